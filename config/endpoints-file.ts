import fs from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { AGENT_NAMES, type AgentName } from '../api/agents/agent-name';

/**
 * LLM_ENDPOINTS_FILE: several provider endpoints, each with its own model and quota, and per-agent
 * routes in fallback order (docs/ENDPOINTS.md). Parsed with `yaml` (JSON is YAML too), `${VAR}`
 * expanded from the environment, validated with zod; the first bad field becomes one line naming it.
 */

/** The `thinking` parameter an endpoint sends (Ark's `thinking: {type}`); absent = not sent. */
export type ThinkingMode = 'enabled' | 'disabled' | 'auto';

/** One endpoint: where calls go and the quota they must stay within. */
export interface EndpointConfig {
  name: string;
  /** `openai`: any OpenAI-compatible HTTP API; `sim`: the embedded simulated model (no network). */
  provider: 'openai' | 'sim';
  baseUrl?: string;
  apiKey?: string;
  /** The model (or Ark endpoint id) sent with every call; part of the response cache key. */
  model: string;
  maxConcurrent: number;
  maxRpm: number;
  /** 0 = no TPM limit. */
  maxTpm: number;
  thinking?: ThinkingMode;
  /** `sim` endpoints only: first-token delay and stream speed (default SIM_LATENCY_MS / SIM_TOKENS_PER_S). */
  sim?: { latencyMs?: number; tokensPerSecond?: number };
}

/** Agent → endpoint names in fallback order; `default` for agents without their own route. */
export type EndpointRoutes = Record<AgentName | 'default', readonly string[]>;

export interface EndpointsSetup {
  endpoints: EndpointConfig[];
  routes: EndpointRoutes;
}

const positive = (max: number) =>
  z
    .number('expected a positive integer')
    .int('expected a positive integer')
    .min(1, 'expected a positive integer')
    .max(max, `expected a positive integer up to ${max}`);

const endpointSchema = z
  .object({
    name: z
      .string('expected a name')
      .regex(/^[A-Za-z0-9_.-]{1,40}$/, 'expected 1-40 letters, digits or _ . -'),
    provider: z.enum(['openai', 'sim'], 'expected openai or sim').default('openai'),
    baseUrl: z.url('expected a URL such as https://ark.cn-beijing.volces.com/api/v3').optional(),
    apiKey: z.string('expected a string').optional(),
    model: z.string('expected a model or endpoint id').min(1, 'expected a model or endpoint id').optional(),
    maxConcurrent: positive(100_000),
    maxRpm: positive(10_000_000),
    maxTpm: z
      .number('expected 0 or a positive integer')
      .int('expected 0 or a positive integer')
      .min(0, 'expected 0 or a positive integer')
      .default(0),
    thinking: z.enum(['enabled', 'disabled', 'auto'], 'expected enabled, disabled or auto').optional(),
    latencyMs: z.number('expected a number of ms').int().min(0).max(600_000).optional(),
    tokensPerSecond: positive(1_000_000).optional(),
  })
  .strict();

const routeSchema = z
  .array(z.string('expected an endpoint name'), 'expected a list of endpoint names')
  .min(1, 'expected at least one endpoint name');

const fileSchema = z
  .object(
    {
      endpoints: z
        .array(endpointSchema, 'expected a list of endpoints')
        .min(1, 'expected at least one endpoint'),
      routes: z
        .object(
          {
            host: routeSchema.optional(),
            planner: routeSchema.optional(),
            critic: routeSchema.optional(),
            reporter: routeSchema.optional(),
            default: routeSchema.optional(),
          },
          'expected agent: [endpoint names]',
        )
        .strict()
        .optional(),
    },
    'expected an object with endpoints and routes',
  )
  .strict();

/** A bad endpoints file: the message is the one line printed before the process exits. */
export class EndpointsFileError extends Error {
  readonly code = 'invalid_config';
  constructor(message: string) {
    super(`LLM_ENDPOINTS_FILE ${message}`);
    this.name = 'EndpointsFileError';
  }
}

/** Reads and validates the file at `path`; `env` supplies `${VAR}`. Throws EndpointsFileError. */
export function loadEndpointsFile(path: string, env: Record<string, string | undefined>): EndpointsSetup {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (error) {
    throw new EndpointsFileError(
      `${path}: cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  return parseEndpointsText(text, env);
}

/** Validates the text of an endpoints file (YAML or JSON). */
export function parseEndpointsText(text: string, env: Record<string, string | undefined>): EndpointsSetup {
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (error) {
    const firstLine = String((error as Error).message).split('\n')[0];
    throw new EndpointsFileError(`is not valid YAML or JSON: ${firstLine}`);
  }
  const expanded = expandVariables(document, env, []);
  const result = fileSchema.safeParse(expanded);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new EndpointsFileError(`${fieldPath(issue.path)}: ${issueMessage(issue)}`);
  }
  const file = result.data;
  const names = new Set<string>();
  const endpoints: EndpointConfig[] = file.endpoints.map((entry, index) => {
    if (names.has(entry.name))
      throw new EndpointsFileError(`endpoints[${index}].name: "${entry.name}" is used twice`);
    names.add(entry.name);
    if (entry.provider === 'openai' && !entry.baseUrl) {
      throw new EndpointsFileError(
        `endpoints[${index}].baseUrl: expected a URL (required for provider openai)`,
      );
    }
    if (entry.provider === 'openai' && !entry.model) {
      throw new EndpointsFileError(`endpoints[${index}].model: expected a model or endpoint id`);
    }
    return {
      name: entry.name,
      provider: entry.provider,
      baseUrl: entry.baseUrl,
      apiKey: entry.apiKey,
      model: entry.model ?? `sim-${entry.name}`,
      maxConcurrent: entry.maxConcurrent,
      maxRpm: entry.maxRpm,
      maxTpm: entry.maxTpm,
      thinking: entry.thinking,
      ...(entry.provider === 'sim'
        ? { sim: { latencyMs: entry.latencyMs, tokensPerSecond: entry.tokensPerSecond } }
        : {}),
    };
  });
  const given = file.routes ?? {};
  for (const [agent, route] of Object.entries(given)) {
    route?.forEach((name, index) => {
      if (!names.has(name)) {
        throw new EndpointsFileError(
          `routes.${agent}[${index}]: "${name}" is not an endpoint (${[...names].join(', ')})`,
        );
      }
    });
  }
  // Agents without a route use `default`; without `default`, the first endpoint.
  const fallbackRoute = given.default ?? [endpoints[0].name];
  const routes: Partial<Record<AgentName | 'default', readonly string[]>> = { default: fallbackRoute };
  for (const agent of AGENT_NAMES) routes[agent] = given[agent] ?? fallbackRoute;
  return { endpoints, routes: routes as EndpointRoutes };
}

/** `${VAR}` in every string, from `env`; an unset variable is an error naming the field. */
function expandVariables(
  value: unknown,
  env: Record<string, string | undefined>,
  at: PropertyKey[],
): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_match, name: string) => {
      const found = env[name];
      if (found === undefined || found === '') {
        throw new EndpointsFileError(`${fieldPath(at)}: \${${name}} is not set in the environment`);
      }
      return found;
    });
  }
  if (Array.isArray(value)) return value.map((item, index) => expandVariables(item, env, [...at, index]));
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, expandVariables(item, env, [...at, key])]),
    );
  }
  return value;
}

function fieldPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(file)';
  return path
    .map((part, index) =>
      typeof part === 'number' ? `[${part}]` : `${index === 0 ? '' : '.'}${String(part)}`,
    )
    .join('');
}

function issueMessage(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys')
    return `unknown field ${issue.keys.map((key) => `"${key}"`).join(', ')}`;
  return issue.message;
}

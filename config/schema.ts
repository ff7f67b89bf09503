import { z } from 'zod';

/**
 * Every setting Troupe reads, with its default and what a valid value looks like: config/ is the
 * only reader of the environment. `.env.example` lists the same variables (a test keeps the two in
 * step), and docs/CONFIGURATION.md says what each one means.
 */

const integer = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .trim()
    .regex(/^-?\d+$/, `an integer from ${min} to ${max}`)
    .transform(Number)
    .pipe(
      z
        .number()
        .int()
        .min(min, `an integer from ${min} to ${max}`)
        .max(max, `an integer from ${min} to ${max}`),
    );

const optionalText = z
  .string()
  .trim()
  .transform((value) => (value === '' ? undefined : value))
  .optional();

const url = z
  .string()
  .trim()
  .transform((value) => (value === '' ? undefined : value))
  .pipe(z.url('a URL such as http://host:port/path').optional())
  .optional();

const agentNames = ['host', 'planner', 'critic', 'reporter'] as const;

const gatewayClasses = ['interactive', 'batch'] as const;

const priorityOrder = z
  .string()
  .trim()
  .transform((value) => value.split(',').map((part) => part.trim().toLowerCase()))
  .refine(
    (parts) =>
      new Set(parts).size === parts.length &&
      agentNames.every((name) => parts.includes(name)) &&
      parts.every(
        (part) =>
          (agentNames as readonly string[]).includes(part) ||
          (gatewayClasses as readonly string[]).includes(part),
      ),
    'the four agents host,planner,critic,reporter in some order, comma-separated, optionally with the gateway classes interactive and batch placed among them',
  )
  .transform((parts) => parts as Array<(typeof agentNames)[number] | (typeof gatewayClasses)[number]>);

const apiKeys = z
  .string()
  .trim()
  .transform((value) => (value === '' ? undefined : value))
  .optional()
  .refine(
    (value) =>
      value === undefined ||
      value.split(',').every((pair) => /^[^:\s]+:[^:\s]+(:(interactive|batch))?$/.test(pair.trim())),
    'comma-separated key:userId pairs, e.g. k1:alice,k2:bob (optionally key:caller:class with class interactive or batch)',
  )
  .transform((value) => {
    const keys = new Map<string, { caller: string; priorityClass: 'interactive' | 'batch' }>();
    for (const pair of value ? value.split(',') : []) {
      const [key, caller, priorityClass] = pair.trim().split(':');
      keys.set(key, {
        caller,
        priorityClass: (priorityClass as 'interactive' | 'batch' | undefined) ?? 'interactive',
      });
    }
    return keys;
  });

const corsOrigins = z
  .string()
  .trim()
  .transform((value) =>
    value
      .split(',')
      .map((origin) => origin.trim().replace(/\/+$/, ''))
      .filter((origin) => origin !== ''),
  )
  .refine(
    (origins) => origins.every((origin) => origin === '*' || /^https?:\/\/[^/\s]+$/.test(origin)),
    'comma-separated origins such as https://chat.example.com,http://localhost:5173 (scheme://host[:port], no path), or *',
  );

export const configSchema = z.object({
  PORT: integer(0, 65535).default(3000),
  HOST: z.string().trim().min(1, 'a host name or address').default('0.0.0.0'),
  DATA_DIR: z.string().trim().min(1, 'a directory path').default('./data'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),

  LLM_PROVIDER: z.enum(['sim', 'openai']).default('sim'),
  LLM_BASE_URL: url,
  LLM_API_KEY: optionalText,
  LLM_MODEL: optionalText,
  LLM_MAX_CONCURRENT: integer(1, 100_000).default(50),
  LLM_MAX_RPM: integer(1, 10_000_000).default(500),
  LLM_MAX_TPM: integer(0, 1_000_000_000).default(0),
  LLM_TIMEOUT: integer(100, 3_600_000).default(60_000),
  LLM_QUEUE_MAX: integer(1, 1_000_000).default(5000),
  CHAT_TIMEOUT_MS: integer(0, 3_600_000).default(60_000),
  LLM_ADMISSION: z.enum(['on', 'off']).default('on'),
  LLM_PRIORITY_ORDER: priorityOrder.default(['host', 'planner', 'critic', 'reporter']),
  LLM_MAX_OUTPUT_TOKENS: integer(16, 1_000_000).default(1024),
  LLM_THINKING: z.enum(['enabled', 'disabled', 'auto']).optional(),
  LLM_CHUNK_INCLUDE_USAGE: z.enum(['on', 'off']).default('off'),
  LLM_FIRST_BYTE_TIMEOUT_MS: integer(0, 3_600_000).default(15_000),
  LLM_FIRST_BYTE_TIMEOUT_FLOOR_MS: integer(100, 3_600_000).default(3000),
  LLM_UNAVAILABLE_COOLDOWN_MS: integer(1000, 86_400_000).default(300_000),
  LLM_ENDPOINTS_FILE: optionalText,

  SSE_MAX_CONCURRENT: integer(1, 1_000_000).default(200),
  SSE_HEARTBEAT_MS: integer(100, 3_600_000).default(15_000),
  SSE_QUEUE_MAX: integer(0, 1_000_000).default(10_000),
  SSE_RESUME_GRACE_MS: integer(0, 3_600_000).default(30_000),
  SSE_TOKEN_GRACE_MS: integer(0, 3_600_000).default(30_000),
  RUN_LOG_RETENTION_MS: integer(0, 86_400_000).default(300_000),
  RUN_LOG_MAX_EVENTS: integer(10, 1_000_000).default(5000),
  SSE_SLOW_READER_MS: integer(100, 3_600_000).default(30_000),
  SSE_MAX_BUFFERED_BYTES: integer(1024, 1_073_741_824).default(1_048_576),
  SSE_TOKEN_BATCH_MS: integer(0, 1000).default(20),

  REQUEST_BODY_TIMEOUT_MS: integer(100, 60_000).default(30_000),
  SHUTDOWN_GRACE_MS: integer(0, 3_600_000).default(8000),
  HEAP_GROWING_PERCENT: integer(0, 300).default(50),

  CRITIC_MAX_ROUNDS: integer(0, 10).default(1),
  TOOL_MAX_ROUNDS: integer(0, 20).default(3),
  AGENT_PARALLEL: z.enum(['auto', 'on', 'off']).default('auto'),
  TOOL_MAX_PARALLEL: integer(1, 100).default(4),

  LLM_CACHE: z.enum(['on', 'off']).default('on'),
  LLM_CACHE_TTL: integer(1, 86_400 * 30).default(3600),
  LLM_CACHE_MAX_BYTES: integer(1024, 1_000_000_000_000).default(64 * 1024 * 1024),

  SIM_LATENCY_MS: integer(0, 600_000).default(300),
  SIM_TOKENS_PER_S: integer(1, 1_000_000).default(200),

  SEARCH_PROVIDER: z.enum(['offline', 'searxng']).default('offline'),
  SEARCH_URL: url,
  SEARCH_MAX_CONCURRENT: integer(1, 100_000).default(100),
  SEARCH_MAX_RPM: integer(1, 10_000_000).default(300),
  SEARCH_CACHE_TTL: integer(0, 86_400 * 30).default(600),

  MONGODB_URI: optionalText,
  MONGO_MAX_POOL_SIZE: integer(1, 10_000).default(100),
  MONGO_MIN_POOL_SIZE: integer(0, 10_000).default(10),
  REDIS_URL: url,
  CONVERSATION_TTL_DAYS: integer(0, 36_500).default(0),

  CORS_ORIGINS: corsOrigins.default([]),

  ALERT_WEBHOOK_URL: url,
  ALERT_WEBHOOK_FORMAT: z.enum(['auto', 'slack', 'feishu', 'dingtalk', 'json']).default('auto'),
  ALERT_WEBHOOK_TIMEOUT_MS: integer(100, 120_000).default(5000),
  ALERT_WEBHOOK_MAX_PER_HOUR: integer(1, 10_000).default(30),
  ALERT_EVAL_INTERVAL_MS: integer(100, 3_600_000).default(15_000),
  ALERT_FOR_MS: integer(0, 3_600_000).default(60_000),
  ALERT_WAIT_P95_MS: integer(1, 3_600_000).default(10_000),
  DURABLE_CHATS: z.enum(['on', 'off']).default('on'),
  RUN_ADOPT_INTERVAL_MS: integer(100, 60_000).default(1000),
  REDIS_KEY_PREFIX: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9_:.{}-]{1,64}$/, 'up to 64 letters, digits or _ : . { } -, e.g. troupe:')
    .default('troupe:'),

  ADMIN_TOKEN: optionalText,
  API_KEYS: apiKeys,
  API_KEYS_FILE: optionalText,
  GATEWAY_MAX_WAIT_MS: integer(100, 3_600_000).default(5_000),
  USER_MAX_ACTIVE_CHATS: integer(0, 100_000).default(0),
});

export type RawConfig = z.output<typeof configSchema>;

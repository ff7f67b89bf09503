import { z } from 'zod';
import type { ToolError } from './tool-errors';

/**
 * The plugin contract: one object describes a tool completely — what the model sees (name,
 * description, zod schema → JSON schema), what it does (`execute`) and how the executor protects
 * it (`policy`). A new tool is one file that calls `defineToolPlugin`.
 */

export interface ToolExecutionContext {
  /** Aborted when the caller goes away, when the tool's timeout fires, or on shutdown. */
  signal: AbortSignal;
  userId: string;
  conversationId: string;
}

export interface ToolRateLimitPolicy {
  /** Executions in flight at once, at most. */
  maxConcurrent: number;
  /** Executions started per rolling minute, at most. */
  maxPerMinute: number;
  /** Milliseconds one execution may take before its signal is aborted and the call fails with tool_timeout. */
  timeout: number;
  /** How long a call may wait for a free slot before failing with tool_rate_limited (default 1000 ms). */
  maxWaitMs?: number;
}

/**
 * `params`: calls with equal (validated) arguments share a cache entry and a single flight;
 * `none`: no caching and no sharing (for tools with side effects);
 * a function: your own key, e.g. normalised arguments or a per-user key.
 */
export type ToolCacheKeyStrategy<TArgs> =
  'params' | 'none' | ((args: TArgs, context: Omit<ToolExecutionContext, 'signal'>) => string);

export interface ToolCachePolicy<TArgs> {
  enabled: boolean;
  /** Seconds a successful result stays fresh. Errors and fallback results are never cached. */
  ttl: number;
  keyStrategy: ToolCacheKeyStrategy<TArgs>;
}

export interface ToolBreakerPolicy {
  /** Percentage of failed calls in the rolling window that opens the circuit. */
  errorThresholdPercentage: number;
  /** Calls in the rolling window before the circuit may open at all. */
  volumeThreshold: number;
  /** Milliseconds the circuit stays open before one half-open probe is let through. */
  resetTimeout: number;
  /** Length of the rolling statistics window in ms (default 10000). */
  rollingCountTimeout?: number;
}

export interface ToolPolicy<TArgs> {
  rateLimit: ToolRateLimitPolicy;
  cache: ToolCachePolicy<TArgs>;
  breaker: ToolBreakerPolicy;
  /** Identical concurrent calls share one execution (default true unless keyStrategy is 'none'). */
  singleFlight?: boolean;
  /** Token budget of the content handed to the model (default 1200); larger results are trimmed. */
  maxResultTokens?: number;
}

export interface ToolPlugin<TSchema extends z.ZodType = z.ZodType, TResult = unknown> {
  /** The function name the model calls: letters, digits, `_` and `-`, at most 64. */
  name: string;
  /** Tells the model when and how to use the tool. */
  description: string;
  /** Validates the model's arguments; the JSON schema offered to the model is derived from it. */
  parameters: TSchema;
  /** Does the work. Must stop when `context.signal` aborts. Strings go to the model as-is, anything else as JSON. */
  execute(args: z.output<TSchema>, context: ToolExecutionContext): Promise<TResult>;
  policy: ToolPolicy<z.output<TSchema>>;
  /**
   * A degraded result when the tool fails, times out or its circuit is open. Never cached; the
   * outcome is `ok: true, degraded: true`. Throw to report the original failure instead.
   */
  fallback?(
    args: z.output<TSchema>,
    context: ToolExecutionContext,
    error: ToolError,
  ): Promise<TResult> | TResult;
}

/** A plugin with its types erased, as the executor stores it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyToolPlugin = ToolPlugin<z.ZodType, any>;

/** Type-checks a plugin against its own schema (args are inferred from `parameters`). */
export function defineToolPlugin<TSchema extends z.ZodType, TResult>(
  plugin: ToolPlugin<TSchema, TResult>,
): ToolPlugin<TSchema, TResult> {
  return plugin;
}

export const TOOL_NAME_PATTERN = /^[a-zA-Z0-9_-]{1,64}$/;

/** The JSON schema of the arguments, in the shape OpenAI's `tools[].function.parameters` expects. */
export function argumentsJsonSchema(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, {
    io: 'input',
    unrepresentable: 'any',
  }) as Record<string, unknown>;
  // Zod strips unknown keys anyway; saying so lets the model (and OpenAI's strict mode) know.
  if (rest.type === 'object' && rest.additionalProperties === undefined) rest.additionalProperties = false;
  return rest;
}

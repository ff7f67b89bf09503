import CircuitBreaker from 'opossum';
import { systemClock, type Clock } from '../clock';
import type { ToolCall, ToolDefinition } from '../llm/provider';
import { executeWithTimeout } from './execute-with-timeout';
import { parseToolArguments } from './parse-tool-arguments';
import { LruToolCache, stableStringify, type ToolCache } from './tool-cache';
import { ToolError, describeError, isToolError, toolErrorContent } from './tool-errors';
import {
  ToolMetrics,
  overallHealth,
  type CircuitState,
  type RecordedCall,
  type ToolCounters,
  type ToolHealth,
  type ToolStatus,
  type ToolSystemStatus,
} from './tool-metrics';
import {
  TOOL_NAME_PATTERN,
  argumentsJsonSchema,
  type AnyToolPlugin,
  type ToolExecutionContext,
} from './tool-plugin';
import { InMemoryToolRateLimiter, type ToolRateLimiter } from './tool-rate-limiter';
import { renderToolContent } from './tool-result-budget';
import type { ToolCallContext, ToolOutcome, ToolRunner } from './tool-runner';
import { SingleFlight } from './single-flight';

/** The subset of a pino logger the tool system uses. */
export interface ToolLogger {
  warn(details: Record<string, unknown>, message: string): void;
}

export interface ToolExecutorOptions {
  clock?: Clock;
  /** Result cache shared by all tools (default: in-process LRU). */
  cache?: ToolCache;
  logger?: ToolLogger;
  /** Builds each tool's limiter (default: in-memory); the seam for a Redis limiter. */
  createRateLimiter?: (plugin: AnyToolPlugin, clock: Clock) => ToolRateLimiter;
  /** Token budget for tools that do not set `policy.maxResultTokens` (default 1200). */
  defaultMaxResultTokens?: number;
}

export type ToolOutcomeListener = (outcome: ToolOutcome) => void;

type BreakerAction = (args: unknown, context: ToolExecutionContext) => Promise<unknown>;

interface RegisteredTool {
  plugin: AnyToolPlugin;
  definition: ToolDefinition;
  schemaText: string;
  limiter: ToolRateLimiter;
  breaker: CircuitBreaker<Parameters<BreakerAction>, unknown>;
  metrics: ToolMetrics;
  maxResultTokens: number;
}

interface Executed {
  content: string;
  degraded: boolean;
}

/** Failures the fallback may replace; a rate limit or the caller's own mistake stays visible. */
const FALLBACK_CODES = new Set(['tool_failed', 'tool_timeout', 'tool_unavailable']);
/** Failures that must not count against the tool's circuit. */
const BREAKER_NEUTRAL_CODES = new Set(['tool_rate_limited', 'cancelled', 'invalid_arguments']);

/**
 * Runs model tool calls through, in order: lookup, argument validation (parseToolArguments), cache,
 * single-flight, circuit breaker (opossum) around the rate limit and the timeout (executeWithTimeout),
 * then the plugin — and records per-tool metrics. `run` never rejects: every failure is an outcome
 * the model can read.
 */
export class ToolExecutor implements ToolRunner {
  private readonly clock: Clock;
  private readonly cache: ToolCache;
  private readonly logger?: ToolLogger;
  private readonly createRateLimiter: (plugin: AnyToolPlugin, clock: Clock) => ToolRateLimiter;
  private readonly defaultMaxResultTokens: number;
  private readonly tools = new Map<string, RegisteredTool>();
  private readonly flights = new SingleFlight<Executed>();
  private readonly listeners = new Set<ToolOutcomeListener>();

  constructor(options: ToolExecutorOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.cache = options.cache ?? new LruToolCache({ clock: this.clock });
    this.logger = options.logger;
    this.defaultMaxResultTokens = options.defaultMaxResultTokens ?? 1200;
    this.createRateLimiter =
      options.createRateLimiter ??
      ((plugin, clock) =>
        new InMemoryToolRateLimiter({
          tool: plugin.name,
          maxConcurrent: plugin.policy.rateLimit.maxConcurrent,
          maxPerMinute: plugin.policy.rateLimit.maxPerMinute,
          maxWaitMs: plugin.policy.rateLimit.maxWaitMs,
          clock,
        }));
  }

  /** Adds a tool. Throws on a bad or duplicate name (a programming error, found at start). */
  register(plugin: AnyToolPlugin): this {
    if (!TOOL_NAME_PATTERN.test(plugin.name)) {
      throw new TypeError(`Tool name "${plugin.name}" must match ${TOOL_NAME_PATTERN}`);
    }
    if (this.tools.has(plugin.name)) throw new TypeError(`Tool "${plugin.name}" is already registered`);
    const parameters = argumentsJsonSchema(plugin.parameters);
    const { breaker: breakerPolicy } = plugin.policy;
    const action: BreakerAction = (args, context) => this.limitedExecution(plugin.name, args, context);
    const breaker = new CircuitBreaker<Parameters<BreakerAction>, unknown>(action, {
      name: plugin.name,
      // The executor's own clock-driven timeout aborts the plugin's signal; opossum's would not.
      timeout: false,
      errorThresholdPercentage: breakerPolicy.errorThresholdPercentage,
      volumeThreshold: breakerPolicy.volumeThreshold,
      resetTimeout: breakerPolicy.resetTimeout,
      rollingCountTimeout: breakerPolicy.rollingCountTimeout ?? 10_000,
      enableSnapshots: false,
      errorFilter: (error: unknown) => isToolError(error) && BREAKER_NEUTRAL_CODES.has(error.code),
    });
    breaker.on('open', () => this.logger?.warn({ tool: plugin.name }, 'tool circuit opened'));
    breaker.on('close', () => this.logger?.warn({ tool: plugin.name }, 'tool circuit closed'));
    this.tools.set(plugin.name, {
      plugin,
      definition: { name: plugin.name, description: plugin.description, parameters },
      schemaText: JSON.stringify(parameters),
      limiter: this.createRateLimiter(plugin, this.clock),
      breaker,
      metrics: new ToolMetrics(plugin.name),
      maxResultTokens: plugin.policy.maxResultTokens ?? this.defaultMaxResultTokens,
    });
    return this;
  }

  names(): string[] {
    return [...this.tools.keys()];
  }

  definitions(names?: string[]): ToolDefinition[] {
    const selected = names ?? this.names();
    return selected.flatMap((name) => {
      const tool = this.tools.get(name);
      return tool ? [tool.definition] : [];
    });
  }

  async run(call: ToolCall, context: ToolCallContext): Promise<ToolOutcome> {
    const started = this.clock.now();
    const tool = this.tools.get(call.name);
    if (!tool) {
      const available = this.names().join(', ') || 'none';
      const error = new ToolError(
        'unknown_tool',
        `There is no tool named "${call.name}". Available tools: ${available}.`,
      );
      return this.finish(undefined, this.failure(call, error, started));
    }
    try {
      const args = parseToolArguments(tool.plugin, tool.schemaText, call.arguments);
      if (context.signal.aborted) throw new ToolError('cancelled', 'The call was cancelled');
      const { policy } = tool.plugin;
      const key = this.keyOf(tool, args, context);
      const cacheKey =
        key !== undefined && policy.cache.enabled && policy.cache.ttl > 0
          ? `tool:${tool.plugin.name}:${key}`
          : undefined;
      if (cacheKey !== undefined) {
        const hit = await this.cacheGet(cacheKey);
        if (hit !== undefined) return this.finish(tool, this.success(call, hit, true, false, started));
      }
      const execute = (signal: AbortSignal) =>
        this.execute(
          tool,
          args,
          { signal, userId: context.userId, conversationId: context.conversationId },
          cacheKey,
        );
      const shared = key !== undefined && policy.singleFlight !== false;
      const result = shared
        ? await this.flights.run(`${tool.plugin.name}:${key}`, context.signal, execute)
        : await execute(context.signal);
      return this.finish(tool, this.success(call, result.content, false, result.degraded, started));
    } catch (error) {
      return this.finish(tool, this.failure(call, this.toToolError(tool, error, context.signal), started));
    }
  }

  /** `GET /api/tool-system/status`: one row per tool, in registration order. */
  status(): ToolSystemStatus {
    return {
      tools: [...this.tools.values()].map((tool) =>
        tool.metrics.status(circuitState(tool.breaker), tool.plugin.fallback !== undefined),
      ),
    };
  }

  /** One tool's row, as the brief's `toolExecutor.getMetrics('search_web')`; undefined for an unknown name. */
  getMetrics(name: string): ToolStatus | undefined {
    const tool = this.tools.get(name);
    return tool && tool.metrics.status(circuitState(tool.breaker), tool.plugin.fallback !== undefined);
  }

  /** `services.tools` of `/api/health`: the worst tool status. */
  health(): ToolHealth {
    return overallHealth(this.status().tools);
  }

  /** Raw cumulative counters per tool, for the Prometheus module. */
  counters(): ToolCounters[] {
    return [...this.tools.values()].map((tool) => tool.metrics.counters(circuitState(tool.breaker)));
  }

  /** Calls `listener` after every call (e.g. to feed prom-client histograms); returns an unsubscribe. */
  onOutcome(listener: ToolOutcomeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Stops the breakers' timers. Calls after close fail with tool_unavailable. */
  close(): void {
    for (const tool of this.tools.values()) tool.breaker.shutdown();
  }

  private keyOf(tool: RegisteredTool, args: unknown, context: ToolCallContext): string | undefined {
    const strategy = tool.plugin.policy.cache.keyStrategy;
    if (strategy === 'none') return undefined;
    if (strategy === 'params') return stableStringify(args);
    return strategy(args, { userId: context.userId, conversationId: context.conversationId });
  }

  /** One execution through the breaker, with the fallback on failure; caches plain successes. */
  private async execute(
    tool: RegisteredTool,
    args: unknown,
    context: ToolExecutionContext,
    cacheKey: string | undefined,
  ): Promise<Executed> {
    try {
      const result = await tool.breaker.fire(args, context);
      const content = renderToolContent(result, tool.maxResultTokens);
      if (cacheKey !== undefined) await this.cacheSet(cacheKey, content, tool.plugin.policy.cache.ttl);
      return { content, degraded: false };
    } catch (raw) {
      const error = this.toToolError(tool, raw, context.signal);
      if (tool.plugin.fallback && FALLBACK_CODES.has(error.code) && !context.signal.aborted) {
        try {
          const degraded = await tool.plugin.fallback(args, context, error);
          return { content: renderToolContent(degraded, tool.maxResultTokens), degraded: true };
        } catch (fallbackError) {
          this.logger?.warn(
            { tool: tool.plugin.name, error: describeError(fallbackError) },
            'tool fallback failed',
          );
        }
      }
      throw error;
    }
  }

  /** The breaker's action: a rate-limit permit, then the plugin under its timeout (executeWithTimeout). */
  private async limitedExecution(
    name: string,
    args: unknown,
    context: ToolExecutionContext,
  ): Promise<unknown> {
    const tool = this.tools.get(name)!;
    const permit = await tool.limiter.acquire(context.signal);
    try {
      return await executeWithTimeout(tool.plugin, args, context, this.clock);
    } finally {
      permit.release();
    }
  }

  private toToolError(tool: RegisteredTool | undefined, error: unknown, signal: AbortSignal): ToolError {
    if (isToolError(error)) return error;
    const name = tool?.plugin.name ?? 'the tool';
    const code = (error as { code?: unknown } | null)?.code;
    if (code === 'EOPENBREAKER' || code === 'ESHUTDOWN') {
      const retryAfterMs = tool?.plugin.policy.breaker.resetTimeout;
      return new ToolError(
        'tool_unavailable',
        `${name} is temporarily unavailable after repeated failures; continue without it or retry later.`,
        { retryAfterMs, cause: error },
      );
    }
    if (signal.aborted) return new ToolError('cancelled', 'The call was cancelled', { cause: error });
    return new ToolError('tool_failed', `${name} failed: ${describeError(error)}`, { cause: error });
  }

  private async cacheGet(key: string): Promise<string | undefined> {
    try {
      return await this.cache.get(key);
    } catch (error) {
      // A broken cache costs hit rate, never the call.
      this.logger?.warn({ key, error: describeError(error) }, 'tool cache read failed');
      return undefined;
    }
  }

  private async cacheSet(key: string, value: string, ttlSeconds: number): Promise<void> {
    try {
      await this.cache.set(key, value, ttlSeconds);
    } catch (error) {
      this.logger?.warn({ key, error: describeError(error) }, 'tool cache write failed');
    }
  }

  private success(
    call: ToolCall,
    content: string,
    cached: boolean,
    degraded: boolean,
    started: number,
  ): ToolOutcome {
    const outcome: ToolOutcome = {
      callId: call.id,
      tool: call.name,
      ok: true,
      cached,
      latencyMs: Math.max(0, this.clock.now() - started),
      content,
    };
    if (degraded) outcome.degraded = true;
    return outcome;
  }

  private failure(call: ToolCall, error: ToolError, started: number): ToolOutcome {
    return {
      callId: call.id,
      tool: call.name,
      ok: false,
      cached: false,
      latencyMs: Math.max(0, this.clock.now() - started),
      content: toolErrorContent(error),
      errorCode: error.code,
    };
  }

  private finish(tool: RegisteredTool | undefined, outcome: ToolOutcome): ToolOutcome {
    const recorded: RecordedCall = {
      ok: outcome.ok,
      cached: outcome.cached,
      degraded: outcome.degraded === true,
      latencyMs: outcome.latencyMs,
      errorCode: outcome.errorCode,
    };
    tool?.metrics.record(recorded);
    for (const listener of this.listeners) {
      try {
        listener(outcome);
      } catch (error) {
        this.logger?.warn({ error: describeError(error) }, 'tool outcome listener failed');
      }
    }
    return outcome;
  }
}

function circuitState(breaker: { opened: boolean; halfOpen: boolean }): CircuitState {
  if (breaker.opened) return 'open';
  if (breaker.halfOpen) return 'half_open';
  return 'closed';
}

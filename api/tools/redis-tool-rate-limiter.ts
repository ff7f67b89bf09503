import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Clock, TimerHandle } from '../clock';
import { withCommands } from '../redis/redis-commands';
import { ToolError } from './tool-errors';
import type { ToolLogger } from './tool-executor';
import type { ToolPermit, ToolRateLimiter, ToolRateLimiterSnapshot } from './tool-rate-limiter';

export interface RedisToolRateLimiterOptions {
  client: Redis;
  keyPrefix: string;
  tool: string;
  maxConcurrent: number;
  maxPerMinute: number;
  /**
   * How long a permit holds its slot if never released (its instance was killed): the tool's
   * timeout plus a margin, since the executor releases every permit by then.
   */
  leaseMs: number;
  /** Longest wait for a slot before tool_rate_limited (default 1000 ms). */
  maxWaitMs?: number;
  /** Waiting calls on this instance, at most (default 1000). */
  maxWaiting?: number;
  /** Length of the rolling window (default 60000 ms). */
  windowMs?: number;
  /** How often a call waiting for a concurrency slot asks again, ms (default 50). */
  retryMs?: number;
  /** The limiter used while Redis fails: this instance's share of the limits (built by the composition root). */
  fallback: ToolRateLimiter;
  clock: Clock;
  logger?: ToolLogger;
}

/**
 * A tool's limits shared by every instance: each acquire is one Lua script on Redis (leases for
 * concurrency, a rolling window for starts — the same rules as InMemoryToolRateLimiter, checked
 * and consumed atomically with Redis's clock). A call that finds no slot asks again until its
 * wait bound (tool calls are short and rare next to LLM calls; polling every 50 ms costs little).
 * While Redis fails, calls go to the local fallback (logged once, and once when shared again).
 */
export class RedisToolRateLimiter implements ToolRateLimiter {
  private readonly leasesKey: string;
  private readonly startsKey: string;
  private readonly maxWaitMs: number;
  private readonly maxWaiting: number;
  private readonly windowMs: number;
  private readonly retryMs: number;
  private waiting = 0;
  private last = { active: 0, startedInWindow: 0 };
  private degraded = false;

  constructor(private readonly options: RedisToolRateLimiterOptions) {
    const base = `${options.keyPrefix}tool-limit:${options.tool}:`;
    this.leasesKey = `${base}leases`;
    this.startsKey = `${base}starts`;
    this.maxWaitMs = options.maxWaitMs ?? 1000;
    this.maxWaiting = options.maxWaiting ?? 1000;
    this.windowMs = options.windowMs ?? 60_000;
    this.retryMs = options.retryMs ?? 50;
  }

  async acquire(signal: AbortSignal): Promise<ToolPermit> {
    if (signal.aborted) throw cancelled();
    if (this.waiting >= this.maxWaiting) throw this.limitedError(this.maxWaitMs);
    const deadline = this.options.clock.now() + this.maxWaitMs;
    this.waiting++;
    try {
      for (;;) {
        const permitId = randomBytes(9).toString('base64url');
        let reply: number[];
        try {
          reply = await withCommands(this.options.client).acquireToolPermit(
            this.leasesKey,
            this.startsKey,
            permitId,
            this.options.maxConcurrent,
            this.options.maxPerMinute,
            this.windowMs,
            this.options.leaseMs,
          );
        } catch (error) {
          // No answer is no refusal: Redis may have granted it after the timeout. Sent on the same
          // connection, the removal runs after the acquire (or fails too, and the lease runs out).
          this.options.client.zrem(this.leasesKey, permitId).catch(() => undefined);
          this.degrade(error);
          return await this.options.fallback.acquire(signal);
        }
        this.recover();
        const [granted, windowWaitMs, active, started] = reply.map(Number);
        this.last = { active, startedInWindow: started };
        if (granted === 1) return this.permit(permitId);
        const remaining = deadline - this.options.clock.now();
        if (windowWaitMs > remaining || remaining <= 0) throw this.limitedError(windowWaitMs);
        await this.pause(Math.min(remaining, windowWaitMs > 0 ? windowWaitMs : this.retryMs), signal);
        if (signal.aborted) throw cancelled();
      }
    } finally {
      this.waiting--;
    }
  }

  snapshot(): ToolRateLimiterSnapshot {
    if (this.degraded) return this.options.fallback.snapshot();
    return {
      active: this.last.active,
      waiting: this.waiting,
      startedInWindow: this.last.startedInWindow,
      maxConcurrent: this.options.maxConcurrent,
      maxPerMinute: this.options.maxPerMinute,
    };
  }

  private permit(permitId: string): ToolPermit {
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        // If this fails, the lease runs out on its own.
        this.options.client.zrem(this.leasesKey, permitId).catch(() => undefined);
      },
    };
  }

  private degrade(error: unknown): void {
    if (this.degraded) return;
    this.degraded = true;
    this.options.logger?.warn(
      { tool: this.options.tool, error: error instanceof Error ? error.message : String(error) },
      'shared tool limits unreachable in Redis: this instance uses its local share until Redis is back',
    );
  }

  private recover(): void {
    if (!this.degraded) return;
    this.degraded = false;
    this.options.logger?.warn({ tool: this.options.tool }, 'shared tool limits in Redis are back');
  }

  private pause(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      let timer: TimerHandle | undefined = undefined;
      const done = () => {
        if (timer) this.options.clock.clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      timer = this.options.clock.setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  private limitedError(windowWaitMs: number): ToolError {
    const { tool, maxConcurrent, maxPerMinute } = this.options;
    const retryAfterMs = windowWaitMs > 0 ? windowWaitMs : this.maxWaitMs;
    return new ToolError(
      'tool_rate_limited',
      `${tool} is at its rate limit (${maxConcurrent} at once, ${maxPerMinute} per minute, across all instances); ` +
        `retry in about ${Math.ceil(retryAfterMs / 1000)} s or continue without this tool.`,
      { retryAfterMs },
    );
  }
}

function cancelled(): ToolError {
  return new ToolError('cancelled', 'The call was cancelled');
}

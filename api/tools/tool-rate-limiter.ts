import { systemClock, type Clock, type TimerHandle } from '../clock';
import { ToolError } from './tool-errors';

/**
 * The limiter port for one tool: at most `maxConcurrent` executions in flight and `maxPerMinute`
 * started per rolling minute. A call waits briefly for a slot, then fails fast with
 * tool_rate_limited — a model is better served by "busy, answer without it" than by a long wait.
 * A Redis adapter (shared by all instances) will implement the same port.
 */
export interface ToolRateLimiter {
  /** Resolves with a permit once a slot is free; rejects with ToolError(tool_rate_limited | cancelled). */
  acquire(signal: AbortSignal): Promise<ToolPermit>;
  snapshot(): ToolRateLimiterSnapshot;
}

export interface ToolPermit {
  /** Frees the concurrency slot; safe to call more than once. */
  release(): void;
}

export interface ToolRateLimiterSnapshot {
  active: number;
  waiting: number;
  startedInWindow: number;
  maxConcurrent: number;
  maxPerMinute: number;
}

export interface InMemoryToolRateLimiterOptions {
  tool: string;
  maxConcurrent: number;
  maxPerMinute: number;
  /** Longest wait for a slot before tool_rate_limited (default 1000 ms). */
  maxWaitMs?: number;
  /** Waiting calls, at most; later ones fail at once (default 1000). */
  maxWaiting?: number;
  /** Length of the rolling window (default 60000 ms). */
  windowMs?: number;
  clock?: Clock;
}

interface Waiter {
  resolve(permit: ToolPermit): void;
  reject(error: ToolError): void;
  timer: TimerHandle;
  signal: AbortSignal;
  onAbort: () => void;
}

export class InMemoryToolRateLimiter implements ToolRateLimiter {
  private readonly clock: Clock;
  private readonly maxWaitMs: number;
  private readonly maxWaiting: number;
  private readonly windowMs: number;
  private active = 0;
  /** Start times inside the window, oldest first. */
  private readonly starts: number[] = [];
  private readonly waiters: Waiter[] = [];
  private windowTimer?: TimerHandle;

  constructor(private readonly options: InMemoryToolRateLimiterOptions) {
    this.clock = options.clock ?? systemClock;
    this.maxWaitMs = options.maxWaitMs ?? 1000;
    this.maxWaiting = options.maxWaiting ?? 1000;
    this.windowMs = options.windowMs ?? 60_000;
  }

  acquire(signal: AbortSignal): Promise<ToolPermit> {
    if (signal.aborted) return Promise.reject(new ToolError('cancelled', 'The call was cancelled'));
    // Waiters go first: a newcomer never overtakes a call that is already waiting.
    if (this.waiters.length === 0) {
      const permit = this.tryAcquire();
      if (permit) return Promise.resolve(permit);
    }
    const windowWait = this.windowWaitMs();
    if (windowWait > this.maxWaitMs) return Promise.reject(this.limitedError(windowWait));
    if (this.waiters.length >= this.maxWaiting) return Promise.reject(this.limitedError(windowWait));

    return new Promise<ToolPermit>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        signal,
        timer: this.clock.setTimeout(() => {
          this.removeWaiter(waiter);
          reject(this.limitedError(this.windowWaitMs()));
        }, this.maxWaitMs),
        onAbort: () => {
          this.removeWaiter(waiter);
          reject(new ToolError('cancelled', 'The call was cancelled'));
        },
      };
      signal.addEventListener('abort', waiter.onAbort, { once: true });
      this.waiters.push(waiter);
      this.scheduleWindowWake();
    });
  }

  snapshot(): ToolRateLimiterSnapshot {
    this.prune();
    return {
      active: this.active,
      waiting: this.waiters.length,
      startedInWindow: this.starts.length,
      maxConcurrent: this.options.maxConcurrent,
      maxPerMinute: this.options.maxPerMinute,
    };
  }

  private tryAcquire(): ToolPermit | undefined {
    this.prune();
    if (this.active >= this.options.maxConcurrent || this.starts.length >= this.options.maxPerMinute)
      return undefined;
    this.active++;
    this.starts.push(this.clock.now());
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.active--;
        this.drain();
      },
    };
  }

  /** Wakes waiters in order while slots are free (called on release and when the window moves). */
  private drain(): void {
    while (this.waiters.length > 0) {
      const permit = this.tryAcquire();
      if (!permit) break;
      const waiter = this.waiters.shift()!;
      this.detach(waiter);
      waiter.resolve(permit);
    }
    this.scheduleWindowWake();
  }

  private scheduleWindowWake(): void {
    if (this.windowTimer || this.waiters.length === 0) return;
    const wait = this.windowWaitMs();
    // The window may have opened since the caller found it full (a stalled process): then drain
    // at once unless concurrency is what blocks, which a release will end.
    if (wait <= 0 && this.active >= this.options.maxConcurrent) return;
    this.windowTimer = this.clock.setTimeout(() => {
      this.windowTimer = undefined;
      this.drain();
    }, wait);
  }

  /** Milliseconds until the rolling window has room for one more start (0 when it has now). */
  private windowWaitMs(): number {
    this.prune();
    if (this.starts.length < this.options.maxPerMinute) return 0;
    const oldestThatMustLeave = this.starts[this.starts.length - this.options.maxPerMinute];
    return Math.max(1, oldestThatMustLeave + this.windowMs - this.clock.now());
  }

  private prune(): void {
    const cutoff = this.clock.now() - this.windowMs;
    let expired = 0;
    while (expired < this.starts.length && this.starts[expired] <= cutoff) expired++;
    if (expired > 0) this.starts.splice(0, expired);
  }

  private removeWaiter(waiter: Waiter): void {
    const index = this.waiters.indexOf(waiter);
    if (index >= 0) this.waiters.splice(index, 1);
    this.detach(waiter);
    if (this.waiters.length === 0 && this.windowTimer) {
      this.clock.clearTimeout(this.windowTimer);
      this.windowTimer = undefined;
    }
  }

  private detach(waiter: Waiter): void {
    this.clock.clearTimeout(waiter.timer);
    waiter.signal.removeEventListener('abort', waiter.onAbort);
  }

  private limitedError(windowWaitMs: number): ToolError {
    const { tool, maxConcurrent, maxPerMinute } = this.options;
    const retryAfterMs = windowWaitMs > 0 ? windowWaitMs : this.maxWaitMs;
    return new ToolError(
      'tool_rate_limited',
      `${tool} is at its rate limit (${maxConcurrent} at once, ${maxPerMinute} per minute); ` +
        `retry in about ${Math.ceil(retryAfterMs / 1000)} s or continue without this tool.`,
      { retryAfterMs },
    );
  }
}

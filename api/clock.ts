/**
 * Time as a dependency. The scheduler, limiters, breakers and caches read time and set timers only
 * through a Clock, so tests drive them with a ManualClock instead of sleeping.
 */
export interface Clock {
  /** Milliseconds; monotonic (see systemClock). Use it for durations, deadlines and rate windows. */
  now(): number;
  setTimeout(callback: () => void, delayMs: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
  /**
   * Runs `callback` after the I/O of this event-loop turn (setImmediate's check phase): how work that
   * could hold the loop — telling 10,000 waiting clients their place, pinging every stream — is cut
   * into slices with sockets and timers in between. A turn is not time: every clock defers the same
   * way, so a test on a ManualClock never advances time for a slice to run.
   */
  defer(callback: () => void): void;
}

/** Opaque: only the clock that made a handle knows what is inside. */
export type TimerHandle = object;

/**
 * Monotonic: `performance.timeOrigin + performance.now()` never goes backwards, so a wall-clock step
 * (NTP, an operator) cannot empty or freeze the rolling rate windows. It reads as ms since the epoch,
 * close to Date.now() but free to drift from it: use `new Date()` for timestamps shown to people.
 */
export const systemClock: Clock = {
  now: () => performance.timeOrigin + performance.now(),
  setTimeout(callback, delayMs) {
    const timer = setTimeout(callback, Math.max(0, delayMs));
    // Timers must never keep a shutting-down process alive.
    timer.unref?.();
    return timer;
  },
  clearTimeout(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
  defer(callback) {
    setImmediate(callback);
  },
};

/** The system clock read as wall time: for stored timestamps people read, not for limits or deadlines. */
export const wallClock: Clock = { ...systemClock, now: () => Date.now() };

/** A clock that moves only when told to; timers fire in time order during `advance`. */
export class ManualClock implements Clock {
  private current: number;
  private nextId = 1;
  private readonly timers = new Map<number, { at: number; callback: () => void }>();

  constructor(start = 1_000_000) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  setTimeout(callback: () => void, delayMs: number): TimerHandle {
    const id = this.nextId++;
    this.timers.set(id, { at: this.current + Math.max(0, delayMs), callback });
    return { id };
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers.delete((handle as { id: number }).id);
  }

  defer(callback: () => void): void {
    setImmediate(callback);
  }

  /** Moves time forward by `ms`, firing every timer that falls due, in order. */
  advance(ms: number): void {
    const target = this.current + ms;
    for (;;) {
      let nextId = -1;
      let nextAt = Infinity;
      for (const [id, timer] of this.timers) {
        if (timer.at <= target && (timer.at < nextAt || (timer.at === nextAt && id < nextId))) {
          nextAt = timer.at;
          nextId = id;
        }
      }
      if (nextId < 0) break;
      const timer = this.timers.get(nextId)!;
      this.timers.delete(nextId);
      this.current = Math.max(this.current, timer.at);
      timer.callback();
    }
    this.current = target;
  }

  /** Advances time and lets promise continuations run between timers (for async code under test). */
  async advanceAsync(ms: number, step = ms): Promise<void> {
    let remaining = ms;
    while (remaining > 0) {
      const delta = Math.min(step, remaining);
      this.advance(delta);
      remaining -= delta;
      await flushMicrotasks();
    }
    await flushMicrotasks();
  }

  pendingTimers(): number {
    return this.timers.size;
  }
}

/** Lets queued promise callbacks run; a few turns cover chained awaits. */
export async function flushMicrotasks(turns = 10): Promise<void> {
  for (let i = 0; i < turns; i++) await Promise.resolve();
}

import { ManualClock, flushMicrotasks, type Clock, type TimerHandle } from '../../api/clock';
import { InMemoryToolRateLimiter, type ToolPermit } from '../../api/tools/tool-rate-limiter';

describe('InMemoryToolRateLimiter', () => {
  const signal = () => new AbortController().signal;

  it('counts starts over a rolling minute, not a fixed one', async () => {
    const clock = new ManualClock();
    const limiter = new InMemoryToolRateLimiter({
      tool: 't',
      maxConcurrent: 10,
      maxPerMinute: 3,
      maxWaitMs: 1000,
      clock,
    });
    (await limiter.acquire(signal())).release();
    clock.advance(30_000);
    (await limiter.acquire(signal())).release();
    (await limiter.acquire(signal())).release();
    await expect(limiter.acquire(signal())).rejects.toMatchObject({
      code: 'tool_rate_limited',
      retryAfterMs: 30_000,
    });
    clock.advance(30_000); // the first start leaves the window
    (await limiter.acquire(signal())).release();
    expect(limiter.snapshot()).toMatchObject({ startedInWindow: 3, active: 0, waiting: 0 });
  });

  it('a window that opens while the process is stalled between its checks still wakes the waiter', async () => {
    // Each reading of the clock is 150 ms after the last (a starved process): the waiter finds the
    // window full, and by the time it arms the wake-up the window has room again.
    const timers = new ManualClock();
    let time = 0;
    const stalling: Clock = {
      now: () => (time += 150),
      setTimeout: (callback: () => void, delayMs: number): TimerHandle =>
        timers.setTimeout(callback, delayMs),
      clearTimeout: (handle: TimerHandle) => timers.clearTimeout(handle),
      defer: (callback: () => void) => timers.defer(callback),
    };
    const limiter = new InMemoryToolRateLimiter({
      tool: 't',
      maxConcurrent: 10,
      maxPerMinute: 1,
      maxWaitMs: 5000,
      windowMs: 400,
      clock: stalling,
    });
    (await limiter.acquire(signal())).release();
    let permit: ToolPermit | undefined;
    void limiter.acquire(signal()).then((granted) => (permit = granted));
    // Not at the wait bound (5 s): at once.
    timers.advance(0);
    await flushMicrotasks();
    expect(permit).toBeDefined();
  });

  it('wakes a waiter when the window moves within the wait bound', async () => {
    const clock = new ManualClock();
    const limiter = new InMemoryToolRateLimiter({
      tool: 't',
      maxConcurrent: 10,
      maxPerMinute: 1,
      maxWaitMs: 2000,
      clock,
    });
    (await limiter.acquire(signal())).release();
    clock.advance(59_000);
    let permit: ToolPermit | undefined;
    void limiter.acquire(signal()).then((granted) => (permit = granted));
    await clock.advanceAsync(999);
    expect(permit).toBeUndefined();
    await clock.advanceAsync(1);
    expect(permit).toBeDefined();
  });

  it('serves waiters in order and lets a cancelled waiter go', async () => {
    const clock = new ManualClock();
    const limiter = new InMemoryToolRateLimiter({
      tool: 't',
      maxConcurrent: 1,
      maxPerMinute: 100,
      maxWaitMs: 1000,
      clock,
    });
    const holder = await limiter.acquire(signal());
    const order: string[] = [];
    const leaving = new AbortController();
    const cancelled = limiter.acquire(leaving.signal).catch((error) => order.push(`cancelled:${error.code}`));
    const second = limiter.acquire(signal()).then((permit) => {
      order.push('second');
      return permit;
    });
    leaving.abort();
    await flushMicrotasks();
    holder.release();
    holder.release(); // idempotent: must not free a second slot
    (await second).release();
    await cancelled;
    expect(order).toEqual(['cancelled:cancelled', 'second']);
    expect(limiter.snapshot()).toMatchObject({ active: 0, waiting: 0 });
  });

  it('refuses at once when the waiting line is full', async () => {
    const clock = new ManualClock();
    const limiter = new InMemoryToolRateLimiter({
      tool: 't',
      maxConcurrent: 1,
      maxPerMinute: 100,
      maxWaiting: 1,
      clock,
    });
    await limiter.acquire(signal());
    void limiter.acquire(signal()).catch(() => undefined);
    await expect(limiter.acquire(signal())).rejects.toMatchObject({ code: 'tool_rate_limited' });
    await clock.advanceAsync(1000);
    expect(limiter.snapshot().waiting).toBe(0);
  });
});

import type { ToolPermit, ToolRateLimiter } from '../../api/tools/tool-rate-limiter';

/** Limits of the limiter under test; small windows so the suite runs on real time (Redis's clock). */
export interface LimiterShape {
  maxConcurrent: number;
  maxPerMinute: number;
  maxWaitMs: number;
  windowMs: number;
}

/**
 * The tool rate limiter port's behaviour, written once and run against every adapter (in-memory
 * and Redis). Real time with generous bounds: nothing here asserts how fast anything is.
 */
export function toolRateLimiterBehaviour(
  name: string,
  build: (shape: LimiterShape) => Promise<ToolRateLimiter>,
  cleanup: () => Promise<void> = async () => undefined,
): void {
  describe(`ToolRateLimiter behaviour: ${name}`, () => {
    const signal = () => new AbortController().signal;
    afterEach(cleanup);

    test('at most maxConcurrent permits at once; a release lets a waiter in', async () => {
      const limiter = await build({ maxConcurrent: 2, maxPerMinute: 100, maxWaitMs: 5000, windowMs: 60_000 });
      const first = await limiter.acquire(signal());
      await limiter.acquire(signal());
      let third: ToolPermit | undefined;
      const waiting = limiter.acquire(signal()).then((permit) => (third = permit));
      await new Promise((resolve) => setTimeout(resolve, 150));
      expect(third).toBeUndefined();
      first.release();
      first.release(); // idempotent: must not free a second slot
      await waiting;
      expect(third).toBeDefined();
      expect(limiter.snapshot()).toMatchObject({ active: 2, maxConcurrent: 2, maxPerMinute: 100 });
    });

    test('a call that finds no slot within maxWaitMs fails with tool_rate_limited', async () => {
      const limiter = await build({ maxConcurrent: 1, maxPerMinute: 100, maxWaitMs: 200, windowMs: 60_000 });
      await limiter.acquire(signal());
      await expect(limiter.acquire(signal())).rejects.toMatchObject({ code: 'tool_rate_limited' });
    });

    test('starts are counted over the rolling window, and the refusal says when there is room', async () => {
      const limiter = await build({ maxConcurrent: 10, maxPerMinute: 2, maxWaitMs: 100, windowMs: 60_000 });
      (await limiter.acquire(signal())).release();
      (await limiter.acquire(signal())).release();
      const refusal = limiter.acquire(signal());
      await expect(refusal).rejects.toMatchObject({ code: 'tool_rate_limited' });
      const error = (await refusal.catch((caught: unknown) => caught)) as { retryAfterMs?: number };
      expect(error.retryAfterMs).toBeGreaterThan(50_000);
      expect(limiter.snapshot().startedInWindow).toBe(2);
    });

    test('a start leaves the window after windowMs, and a waiter within its bound is let in', async () => {
      const limiter = await build({ maxConcurrent: 10, maxPerMinute: 1, maxWaitMs: 5000, windowMs: 400 });
      (await limiter.acquire(signal())).release();
      const permit = await limiter.acquire(signal());
      expect(permit).toBeDefined();
    });

    test('a waiter whose caller leaves is rejected with cancelled and takes no slot', async () => {
      const limiter = await build({ maxConcurrent: 1, maxPerMinute: 100, maxWaitMs: 5000, windowMs: 60_000 });
      const holder = await limiter.acquire(signal());
      const leaving = new AbortController();
      const cancelled = limiter.acquire(leaving.signal);
      setTimeout(() => leaving.abort(), 50);
      await expect(cancelled).rejects.toMatchObject({ code: 'cancelled' });
      holder.release();
      (await limiter.acquire(signal())).release();
      const aborted = new AbortController();
      aborted.abort();
      await expect(limiter.acquire(aborted.signal)).rejects.toMatchObject({ code: 'cancelled' });
    });
  });
}

import type { LimiterSnapshot } from '../limiter';

/**
 * How long a call sent to an endpoint now would wait for its slot, ms — rough, from what the
 * endpoint shows: a Retry-After hold still running, then the calls ahead of it drained at the rate
 * the binding limit allows (RPM, or concurrency over the measured call time). The routing gateway
 * skips an endpoint whose estimate exceeds the call's remaining time when another one is left.
 */
export function estimateStartWaitMs(input: {
  now: number;
  waiting: number;
  limiter: LimiterSnapshot;
  /** Measured time of one provider call, ms; undefined before one completed. */
  latencyMs: number | undefined;
}): number {
  const { limiter, waiting, now } = input;
  const holdMs = limiter.heldUntil > 0 ? Math.max(0, limiter.heldUntil - now) : 0;
  const { concurrency, rpm } = limiter.limits;
  const free = limiter.active < concurrency && limiter.startsLastMinute < rpm;
  if (waiting === 0 && free) return holdMs;
  // Calls per ms each limit lets through; the smaller one binds.
  const byRate = rpm / 60_000;
  const byConcurrency = input.latencyMs && input.latencyMs > 0 ? concurrency / input.latencyMs : Infinity;
  const drainPerMs = Math.min(byRate, byConcurrency);
  return holdMs + (waiting + 1) / drainPerMs;
}

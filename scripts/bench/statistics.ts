/**
 * Pure numeric helpers of the load benchmark: percentiles, summaries, the quota bound
 * (docs/ARCHITECTURE.md §1) and time bucketing. No I/O, no clock: the report and its test build on these.
 */

/** count, mean and the percentiles the report prints; all undefined when there are no values. */
export interface Summary {
  count: number;
  mean?: number;
  p50?: number;
  p95?: number;
  p99?: number;
  max?: number;
}

/**
 * The p-th percentile (0–100) of already sorted values, nearest-rank definition: the smallest value
 * with at least p % of the values at or below it. Nearest rank never invents a value that was not
 * measured, which keeps p99 of a small sample honest (it is the maximum, not an interpolation).
 */
export function percentileOfSorted(sorted: readonly number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  if (p <= 0) return sorted[0];
  if (p >= 100) return sorted[sorted.length - 1];
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** The p-th percentile of unsorted values (see percentileOfSorted). */
export function percentile(values: readonly number[], p: number): number | undefined {
  return percentileOfSorted(
    [...values].sort((a, b) => a - b),
    p,
  );
}

export function summarize(values: readonly number[]): Summary {
  const finite = values.filter((value) => Number.isFinite(value));
  if (finite.length === 0) return { count: 0 };
  const sorted = finite.sort((a, b) => a - b);
  const total = sorted.reduce((sum, value) => sum + value, 0);
  return {
    count: sorted.length,
    mean: total / sorted.length,
    p50: percentileOfSorted(sorted, 50),
    p95: percentileOfSorted(sorted, 95),
    p99: percentileOfSorted(sorted, 99),
    max: sorted[sorted.length - 1],
  };
}

/** The provider quota the bound is computed from. */
export interface QuotaShape {
  /** Requests per rolling minute (R). */
  rpm: number;
  /** Calls in flight at once (C). */
  concurrency: number;
}

export interface QuotaBound {
  /** R/60 calls/s. */
  rpmBound: number;
  /** C/L calls/s; undefined while no call latency is known. */
  concurrencyBound?: number;
  /** mu = min(R/60, C/L) calls/s (R/60 alone when L is unknown). */
  mu: number;
  /** Which term sets mu. */
  binding: 'rpm' | 'concurrency';
  /** The mean call latency L used, ms. */
  meanCallMs?: number;
}

/** docs/ARCHITECTURE.md §1: mu = min(R/60, C/L), L the mean provider call latency in seconds. */
export function quotaBound(quota: QuotaShape, meanCallMs: number | undefined): QuotaBound {
  const rpmBound = quota.rpm / 60;
  if (meanCallMs === undefined || !(meanCallMs > 0)) return { rpmBound, mu: rpmBound, binding: 'rpm' };
  const concurrencyBound = quota.concurrency / (meanCallMs / 1000);
  return {
    rpmBound,
    concurrencyBound,
    mu: Math.min(rpmBound, concurrencyBound),
    binding: concurrencyBound < rpmBound ? 'concurrency' : 'rpm',
    meanCallMs,
  };
}

/** Chats per second the quota can complete at most when a chat costs `callsPerChat` calls. */
export function chatCapacityPerSecond(bound: QuotaBound, callsPerChat: number): number {
  return callsPerChat > 0 ? bound.mu / callsPerChat : 0;
}

/**
 * Closed-loop users (N users, mean think time Z s) all served within `targetS` seconds need
 * N / (Z + targetS) chats/s. Returns the share of their chats the quota cannot serve at that
 * response time (0 when it can): the floor on the error rate a target implies.
 */
export function unservableShare(
  users: number,
  thinkS: number,
  targetS: number,
  capacityChatsPerS: number,
): number {
  const needed = users / Math.max(1e-9, thinkS + targetS);
  return needed <= capacityChatsPerS ? 0 : 1 - capacityChatsPerS / needed;
}

/** Counts of `times` (ms) per bucket of `bucketMs`, from `startMs` for `buckets` buckets; outside ones are dropped. */
export function bucketize(
  times: readonly number[],
  startMs: number,
  bucketMs: number,
  buckets: number,
): number[] {
  const counts = new Array<number>(Math.max(0, buckets)).fill(0);
  for (const time of times) {
    const index = Math.floor((time - startMs) / bucketMs);
    if (index >= 0 && index < counts.length) counts[index]++;
  }
  return counts;
}

/** Histogram bins over [0, max] (max rounded up to a readable step). */
export interface Histogram {
  binMs: number;
  counts: number[];
}

export function histogram(values: readonly number[], bins = 30): Histogram {
  const max = values.reduce((highest, value) => Math.max(highest, value), 0);
  if (values.length === 0 || max <= 0) return { binMs: 1, counts: [] };
  const binMs = niceStep(max / bins);
  const counts = new Array<number>(Math.floor(max / binMs) + 1).fill(0);
  for (const value of values) counts[Math.min(counts.length - 1, Math.max(0, Math.floor(value / binMs)))]++;
  return { binMs, counts };
}

/** 1, 2 or 5 times a power of ten, at least `raw`: axis steps people can read. */
export function niceStep(raw: number): number {
  if (!(raw > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const factor of [1, 2, 5, 10]) if (factor * power >= raw) return factor * power;
  return 10 * power;
}

/** A seeded PRNG (mulberry32): the same seed gives the same users, messages and think times. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = state;
    mixed = Math.imul(mixed ^ (mixed >>> 15), mixed | 1);
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4294967296;
  };
}

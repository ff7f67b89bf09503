import type { Clock } from '../clock';

/**
 * Percentiles over a rolling time window (issue 3: "p95 from a real histogram, not from
 * averages"). Samples land in time buckets (default 30 × 10 s = 5 min); each bucket keeps its exact
 * count and sum, and up to `samplesPerBucket` raw values (reservoir sampling past that, so memory is
 * bounded under any load while percentiles stay unbiased). Reads sort the live samples: they happen
 * on status requests, not on the dispatch path.
 */
export interface RollingHistogramOptions {
  clock: Clock;
  windowMs?: number;
  bucketMs?: number;
  samplesPerBucket?: number;
  random?: () => number;
}

interface Bucket {
  start: number;
  count: number;
  sum: number;
  samples: number[];
}

export interface HistogramSummary {
  count: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
}

export class RollingHistogram {
  private readonly clock: Clock;
  private readonly bucketMs: number;
  private readonly buckets: Bucket[];
  private readonly samplesPerBucket: number;
  private readonly random: () => number;

  constructor(options: RollingHistogramOptions) {
    this.clock = options.clock;
    const windowMs = options.windowMs ?? 300_000;
    this.bucketMs = options.bucketMs ?? 10_000;
    this.samplesPerBucket = options.samplesPerBucket ?? 2048;
    this.random = options.random ?? Math.random;
    const count = Math.max(1, Math.ceil(windowMs / this.bucketMs));
    this.buckets = Array.from({ length: count }, () => ({ start: -Infinity, count: 0, sum: 0, samples: [] }));
  }

  record(value: number): void {
    const bucket = this.current();
    bucket.count++;
    bucket.sum += value;
    if (bucket.samples.length < this.samplesPerBucket) {
      bucket.samples.push(value);
    } else {
      // Reservoir sampling (Algorithm R): every sample of the bucket is kept with equal probability.
      const slot = Math.floor(this.random() * bucket.count);
      if (slot < this.samplesPerBucket) bucket.samples[slot] = value;
    }
  }

  summary(): HistogramSummary {
    const live = this.live();
    let count = 0;
    let sum = 0;
    const values: number[] = [];
    for (const bucket of live) {
      count += bucket.count;
      sum += bucket.sum;
      for (const value of bucket.samples) values.push(value);
    }
    values.sort((a, b) => a - b);
    return {
      count,
      mean: count === 0 ? 0 : sum / count,
      p50: percentile(values, 0.5),
      p95: percentile(values, 0.95),
      p99: percentile(values, 0.99),
    };
  }

  /** Mean over the window, or undefined with fewer than `minCount` samples (cheap: no sorting). */
  mean(minCount = 1): number | undefined {
    let count = 0;
    let sum = 0;
    for (const bucket of this.live()) {
      count += bucket.count;
      sum += bucket.sum;
    }
    return count >= minCount && count > 0 ? sum / count : undefined;
  }

  private current(): Bucket {
    const now = this.clock.now();
    const start = now - (((now % this.bucketMs) + this.bucketMs) % this.bucketMs);
    const index = Math.floor(start / this.bucketMs) % this.buckets.length;
    const bucket = this.buckets[index];
    if (bucket.start !== start) {
      bucket.start = start;
      bucket.count = 0;
      bucket.sum = 0;
      bucket.samples = [];
    }
    return bucket;
  }

  private live(): Bucket[] {
    const oldest = this.clock.now() - this.buckets.length * this.bucketMs;
    return this.buckets.filter((bucket) => bucket.start > oldest);
  }
}

/** Nearest-rank percentile of sorted values; 0 when empty. */
export function percentile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(fraction * sorted.length)));
  return sorted[rank - 1];
}

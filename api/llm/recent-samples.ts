/**
 * Recent timed samples (a start gap, a call's wait) as the run ledger and the start gaps keep them:
 * the newest RECENT_SAMPLES, each with when it was taken, dropped once older than a window.
 */
export interface TimedSample {
  at: number;
  ms: number;
}

/** How many recent samples each series keeps. */
export const RECENT_SAMPLES = 256;
/** Samples measured before a series' quantiles are trusted (admission's figures all need ten). */
export const MIN_SAMPLES = 10;

/** Appends a sample, keeping the newest RECENT_SAMPLES. */
export function keep(samples: TimedSample[], sample: TimedSample): void {
  samples.push(sample);
  if (samples.length > RECENT_SAMPLES) samples.shift();
}

/** `samples` without the ones older than `maxAgeMs` at `now` (dropped for good). */
export function fresh(samples: TimedSample[], now: number, maxAgeMs: number): TimedSample[] {
  while (samples.length > 0 && now - samples[0].at > maxAgeMs) samples.shift();
  return samples;
}

/** The `fraction` quantile of the samples' ms (nearest rank). */
export function quantile(samples: ReadonlyArray<{ ms: number }>, fraction: number): number {
  const sorted = samples.map((sample) => sample.ms).sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)];
}

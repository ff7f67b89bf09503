/**
 * Estimates how long a place in the waiting line will take, from measured slot hold times.
 *
 * With `slots` streams served at once and a mean hold time `mean`, the chat at position p (1-based)
 * starts after about ceil(p / slots) "generations" of runs: estimate = ceil(p / slots) × mean.
 * The mean is an exponentially weighted moving average, so it follows the current load (runs get
 * slower when the LLM queue fills) without being thrown by one outlier. Before any run has finished
 * the prior stands in; the first measurement replaces it outright rather than being averaged with a guess.
 */
export class WaitEstimator {
  private mean: number;
  private samples = 0;

  constructor(private readonly options: { slots: number; priorRunMs: number; smoothing?: number }) {
    this.mean = options.priorRunMs;
  }

  /** Records how long a run held its slot. */
  recordRun(durationMs: number): void {
    if (!Number.isFinite(durationMs) || durationMs < 0) return;
    const smoothing = this.options.smoothing ?? 0.2;
    this.mean = this.samples === 0 ? durationMs : this.mean + smoothing * (durationMs - this.mean);
    this.samples++;
  }

  /** Mean slot hold time, ms (the prior until a run has been measured). */
  get meanRunMs(): number {
    return this.mean;
  }

  get measuredRuns(): number {
    return this.samples;
  }

  /** Estimated wait for the chat at `position` (1 = next to start); 0 when it starts now. */
  estimate(position: number): number {
    if (position <= 0) return 0;
    return Math.round(Math.ceil(position / this.options.slots) * this.mean);
  }

  /** How long until one slot frees, on average: the sensible Retry-After when the line is full. */
  slotIntervalMs(): number {
    return Math.round(this.mean / this.options.slots);
  }
}

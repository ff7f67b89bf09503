import type { Clock } from '../clock';

/**
 * How long a provider call takes now, learned from the calls themselves (no prior): an exponentially
 * weighted mean of completed calls, which follows a provider that turns 4× slower or faster within a
 * few dozen calls, plus what the calls still in flight already show: calls in flight for longer
 * than the mean are evidence the provider slowed down before any of them completes, so with a few
 * in flight the estimate is at least twice their mean age (in a steady state ages spread evenly over
 * [0, L], so twice their mean is L; one hung call moves it by 1/n only).
 *
 * Until the first call completes there is no estimate (a cold start does not guess).
 */
export class LatencyEstimator {
  private mean: number | undefined;
  private firstTokenMean: number | undefined;
  private samples = 0;
  /** In-flight calls by id → start time, in start order (the first one is the oldest). */
  private readonly inFlight = new Map<number, number>();
  private startSum = 0;
  private nextId = 1;

  constructor(
    private readonly clock: Clock,
    /** Weight of the newest sample. */
    private readonly alpha = 0.2,
  ) {}

  /** A call started; returns the handle to end it with. */
  started(): number {
    const id = this.nextId++;
    const now = this.clock.now();
    this.inFlight.set(id, now);
    this.startSum += now;
    return id;
  }

  /** The call ended; `completedMs` is its duration when it completed (not on failure or abort). */
  ended(id: number, completedMs?: number): void {
    const startedAt = this.inFlight.get(id);
    if (startedAt === undefined) return;
    this.inFlight.delete(id);
    this.startSum -= startedAt;
    if (completedMs === undefined) return;
    this.samples++;
    this.mean = this.mean === undefined ? completedMs : this.mean + this.alpha * (completedMs - this.mean);
  }

  firstToken(ms: number): void {
    this.firstTokenMean =
      this.firstTokenMean === undefined ? ms : this.firstTokenMean + this.alpha * (ms - this.firstTokenMean);
  }

  get sampleCount(): number {
    return this.samples;
  }

  get firstTokenMs(): number | undefined {
    return this.firstTokenMean;
  }

  /** The current estimate in ms, or undefined before any call completed. */
  estimateMs(): number | undefined {
    if (this.mean === undefined) return undefined;
    return Math.max(this.mean, this.inFlightBoundMs());
  }

  /** What the calls in flight show about latency now (0 with fewer than three in flight). */
  inFlightBoundMs(): number {
    if (this.inFlight.size < 3) return 0;
    return 2 * (this.clock.now() - this.startSum / this.inFlight.size);
  }
}

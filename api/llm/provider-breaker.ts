import { EventEmitter } from 'node:events';
import CircuitBreaker from 'opossum';
import type { Clock, TimerHandle } from '../clock';
import { AppError } from '../errors';
import { ProviderError } from './provider';

/**
 * The provider's circuit breaker: opossum decides *when to open* (error percentage over its rolling
 * window, volume threshold); this adapter owns the clock-driven part. opossum arms its half-open
 * timer and rotates its buckets with real timers, which tests on a ManualClock cannot drive, so:
 * - its own resetTimeout is set to the largest timer Node accepts (it never fires in practice, and
 *   is unref'd) and the Clock schedules half-open instead;
 * - its buckets rotate through `rotateBucketController`, fed lazily from the Clock on each call;
 * - half-open admits exactly one probe, the first call that reaches `execute`: success closes (and
 *   clears the window), a counted failure re-opens for another resetTimeout, an inconclusive outcome
 *   (abort, 4xx) leaves it half-open for the next call. Any other call fails fast meanwhile.
 * The request queue reads only `state` (and `openError()` for the calls it fails while open): it
 * takes no permit while open and dispatches one call at a time while half-open, so the call it lets
 * through is the one that becomes the probe here.
 * Only provider outcomes count: a success, or provider trouble (5xx, network, and a call the
 * scheduler aborted because the provider did not answer within a fair share of LLM_TIMEOUT). Caller
 * aborts, 4xx, 429s (which AIMD handles) and timeouts caused by our own queue wait are not verdicts
 * on the provider and are not recorded at all: opossum counts what its errorFilter lets pass as a
 * success, so many aborts would dilute the failure rate and trip the breaker late. Calls therefore
 * run outside opossum, and opossum is fed only the verdicts (its window and threshold decide).
 */
export type BreakerState = 'closed' | 'open' | 'half_open';

export interface ProviderBreakerOptions {
  clock: Clock;
  /** Time open before a half-open probe. */
  resetTimeoutMs?: number;
  errorThresholdPercentage?: number;
  /** Calls in the window before the breaker may open. */
  volumeThreshold?: number;
  rollingWindowMs?: number;
  buckets?: number;
}

export interface BreakerListener {
  onStateChange(state: BreakerState): void;
}

const NEVER_MS = 2_147_483_647;

/**
 * Failures that say the provider is in trouble. `llm_timeout` is the scheduler's in-flight deadline
 * (the scheduler rethrows a provider's AbortError as its abort reason): a provider that accepts
 * connections but never answers must open the breaker, or every call holds a slot for LLM_TIMEOUT.
 * A caller's abort arrives as `cancelled` (or another code) and does not count.
 */
export function countsAsProviderFailure(error: unknown): boolean {
  if (error instanceof AppError) return error.code === 'llm_timeout' && error.details?.ownDeadline !== true;
  return error instanceof ProviderError && (error.kind === 'server' || error.kind === 'network');
}

export class ProviderBreaker {
  private readonly clock: Clock;
  private readonly breaker: CircuitBreaker<[() => Promise<unknown>], unknown>;
  private readonly rotation = new EventEmitter();
  private readonly resetTimeoutMs: number;
  private readonly bucketMs: number;
  private readonly buckets: number;
  private lastRotation: number;
  private current: BreakerState = 'closed';
  private openedAt = 0;
  private halfOpenTimer?: TimerHandle;
  /** The ticket of the probe in flight while half-open; 0 = none. */
  private probing = 0;
  private nextTicket = 1;
  private readonly listeners: BreakerListener[] = [];

  constructor(private readonly options: ProviderBreakerOptions) {
    this.clock = options.clock;
    this.resetTimeoutMs = options.resetTimeoutMs ?? 30_000;
    this.buckets = options.buckets ?? 10;
    const windowMs = options.rollingWindowMs ?? 10_000;
    this.bucketMs = Math.max(1, Math.floor(windowMs / this.buckets));
    this.lastRotation = this.clock.now();
    this.breaker = new CircuitBreaker((action: () => Promise<unknown>) => action(), {
      timeout: false,
      resetTimeout: NEVER_MS,
      errorThresholdPercentage: options.errorThresholdPercentage ?? 50,
      volumeThreshold: options.volumeThreshold ?? 5,
      rollingCountTimeout: windowMs,
      rollingCountBuckets: this.buckets,
      rotateBucketController: this.rotation,
      enableSnapshots: false,
      rollingPercentilesEnabled: false,
    });
    this.breaker.on('open', () => this.onOpened());
  }

  get state(): BreakerState {
    return this.current;
  }

  /** Subscribes to state changes (the queue re-runs dispatch; metrics and logs). */
  addListener(listener: BreakerListener): void {
    this.listeners.push(listener);
  }

  /**
   * Runs `action` through the breaker; fails fast with llm_unavailable (without running it) while
   * open, and while half-open once another call is the probe. Half-open, the first call is the probe.
   */
  async execute<T>(action: () => Promise<T>): Promise<T> {
    this.rotate();
    if (this.current === 'half_open' && !this.probing) return this.probe(action);
    if (this.current !== 'closed') throw this.openError();
    let result: T;
    try {
      result = await action();
    } catch (error) {
      if (countsAsProviderFailure(error)) this.record(error);
      throw error;
    }
    this.record(undefined);
    return result;
  }

  /** Feeds one verdict to opossum's window (a failure when `failure` is set); it may open. */
  private record(failure: unknown): void {
    if (this.current !== 'closed') return;
    this.breaker
      .fire(() => (failure === undefined ? Promise.resolve() : Promise.reject(failure as Error)))
      .catch(() => undefined);
  }

  /** Stops the breaker's resources (tests, shutdown). */
  shutdown(): void {
    if (this.halfOpenTimer) this.clock.clearTimeout(this.halfOpenTimer);
    this.breaker.shutdown();
  }

  /** The error a call fails with while the breaker is open (Retry-After: until half-open). */
  openError(): AppError {
    return new AppError('llm_unavailable', 'The LLM provider is failing; the circuit breaker is open', {
      retryAfterMs: Math.max(0, this.openedAt + this.resetTimeoutMs - this.clock.now()),
    });
  }

  private async probe<T>(action: () => Promise<T>): Promise<T> {
    const ticket = this.nextTicket++;
    this.probing = ticket;
    try {
      const result = await action();
      // Stale: the breaker re-opened meanwhile (another call's failure); that verdict stands.
      if (this.probing !== ticket) return result;
      this.probing = 0;
      this.clearWindow();
      this.breaker.close();
      this.setState('closed');
      return result;
    } catch (error) {
      if (this.probing !== ticket) throw error;
      this.probing = 0;
      // A counted failure re-opens; anything else was not a verdict on the provider: the next call
      // becomes the probe (the queue dispatches it once this one's slot is back).
      if (countsAsProviderFailure(error)) this.onOpened();
      throw error;
    }
  }

  private onOpened(): void {
    this.probing = 0;
    this.openedAt = this.clock.now();
    this.setState('open');
    if (this.halfOpenTimer) this.clock.clearTimeout(this.halfOpenTimer);
    this.halfOpenTimer = this.clock.setTimeout(() => {
      this.halfOpenTimer = undefined;
      this.setState('half_open');
    }, this.resetTimeoutMs);
  }

  private setState(state: BreakerState): void {
    if (this.current === state) return;
    this.current = state;
    for (const listener of this.listeners) listener.onStateChange(state);
  }

  /** Advances opossum's window by the buckets that elapsed on the Clock since the last call. */
  private rotate(): void {
    const now = this.clock.now();
    const elapsed = Math.floor((now - this.lastRotation) / this.bucketMs);
    if (elapsed <= 0) return;
    this.lastRotation += elapsed * this.bucketMs;
    for (let i = 0; i < Math.min(elapsed, this.buckets); i++) this.rotation.emit('rotate');
  }

  private clearWindow(): void {
    for (let i = 0; i < this.buckets; i++) this.rotation.emit('rotate');
    this.lastRotation = this.clock.now();
  }
}

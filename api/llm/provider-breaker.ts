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
 * - half-open admits exactly one probe: success closes (and clears the window), a counted failure
 *   re-opens for another resetTimeout, an inconclusive outcome (abort, 4xx) leaves it half-open.
 * Only provider trouble counts (5xx, network); aborts, 4xx and 429s (which AIMD handles) do not.
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
  onStateChange?: (state: BreakerState) => void;
}

const NEVER_MS = 2_147_483_647;

/** Failures that say the provider is in trouble. */
export function countsAsProviderFailure(error: unknown): boolean {
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
  private probing = false;

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
      errorFilter: (error: unknown) => !countsAsProviderFailure(error),
    });
    this.breaker.on('open', () => this.onOpened());
  }

  get state(): BreakerState {
    return this.current;
  }

  /** Throws llm_unavailable while open, so a call fails before it spends a slot and an RPM start. */
  assertNotOpen(): void {
    if (this.current === 'open') throw this.openError();
  }

  /** Runs `action` through the breaker; fails fast with llm_unavailable while open. */
  async execute<T>(action: () => Promise<T>): Promise<T> {
    this.rotate();
    if (this.current === 'open' || (this.current === 'half_open' && this.probing)) throw this.openError();
    if (this.current === 'half_open') return this.probe(action);
    return (await this.breaker.fire(action)) as T;
  }

  /** Stops the breaker's resources (tests, shutdown). */
  shutdown(): void {
    if (this.halfOpenTimer) this.clock.clearTimeout(this.halfOpenTimer);
    this.breaker.shutdown();
  }

  private openError(): AppError {
    return new AppError('llm_unavailable', 'The LLM provider is failing; the circuit breaker is open', {
      retryAfterMs: Math.max(0, this.openedAt + this.resetTimeoutMs - this.clock.now()),
    });
  }

  private async probe<T>(action: () => Promise<T>): Promise<T> {
    this.probing = true;
    try {
      const result = await action();
      this.probing = false;
      this.clearWindow();
      this.breaker.close();
      this.setState('closed');
      return result;
    } catch (error) {
      this.probing = false;
      // A counted failure re-opens; anything else was not a verdict on the provider.
      if (countsAsProviderFailure(error)) this.onOpened();
      throw error;
    }
  }

  private onOpened(): void {
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
    this.options.onStateChange?.(state);
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

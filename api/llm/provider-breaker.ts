import { EventEmitter } from 'node:events';
import CircuitBreaker from 'opossum';
import type { Clock, TimerHandle } from '../clock';
import { AppError } from '../errors';
import { ProviderError, type UnusableReason } from './provider';
import { UNUSABLE_REASON_TEXT } from './provider-errors';

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
 *
 * A refusal that only a person can end (ProviderError.unusable: a used-up quota, a spending limit,
 * an unpaid bill, a refused key, a missing model) needs no window: one opens the breaker at once,
 * for the long `unavailableCoolDownMs`, with its reason (`unavailable()`); calls then fail fast with
 * provider_quota_exhausted, and after the cool-down one call probes again. Retrying or counting such
 * a refusal as a rate limit would cost a provider call per chat, forever.
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
  /** Time open after a refusal only a person can end, before one probe (default 5 minutes). */
  unavailableCoolDownMs?: number;
}

/** The endpoint refuses every call until a person acts: why, and since when (clock time). */
export interface EndpointUnavailable {
  reason: UnusableReason;
  /** The provider's code (e.g. Ark's `QuotaExceeded`) and message. */
  providerCode?: string;
  providerMessage: string;
  since: number;
}

/** The last provider failure the breaker counted, while no success has followed it. */
export interface RecentProviderFailure {
  message: string;
  at: number;
}

export interface BreakerListener {
  /** `unavailable` is set when the breaker opened for a refusal only a person can end. */
  onStateChange(state: BreakerState, unavailable?: EndpointUnavailable): void;
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
  return (
    error instanceof ProviderError &&
    (error.kind === 'server' || error.kind === 'network' || error.kind === 'timeout')
  );
}

function describeFailure(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
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
  private readonly unavailableCoolDownMs: number;
  /** Set while open (or half-open) for a refusal only a person can end. */
  private unavailableAs?: EndpointUnavailable;
  /** How long the current opening lasts. */
  private openForMs: number;
  private lastFailure?: RecentProviderFailure;

  constructor(private readonly options: ProviderBreakerOptions) {
    this.clock = options.clock;
    this.resetTimeoutMs = options.resetTimeoutMs ?? 30_000;
    this.unavailableCoolDownMs = options.unavailableCoolDownMs ?? 5 * 60_000;
    this.openForMs = this.resetTimeoutMs;
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
      if (this.unusable(error)) this.openUnavailable(error);
      else if (countsAsProviderFailure(error)) this.record(error);
      throw error;
    }
    this.record(undefined);
    return result;
  }

  /** Why the endpoint refuses every call, while the breaker is open or half-open for that. */
  unavailable(): (EndpointUnavailable & { probeInMs: number }) | undefined {
    if (!this.unavailableAs) return undefined;
    const probeInMs = Math.max(0, this.openedAt + this.openForMs - this.clock.now());
    return { ...this.unavailableAs, probeInMs: this.current === 'open' ? probeInMs : 0 };
  }

  /** The last counted provider failure (a 5xx, a dropped connection, a hang), until a success. */
  recentFailure(): RecentProviderFailure | undefined {
    return this.lastFailure;
  }

  /** Feeds one verdict to opossum's window (a failure when `failure` is set); it may open. */
  private record(failure: unknown): void {
    this.lastFailure =
      failure === undefined ? undefined : { message: describeFailure(failure), at: this.clock.now() };
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
    const retryAfterMs = Math.max(0, this.openedAt + this.openForMs - this.clock.now());
    const unavailable = this.unavailableAs;
    if (unavailable) {
      const code = unavailable.providerCode ? ` (${unavailable.providerCode})` : '';
      return new AppError(
        'provider_quota_exhausted',
        `The LLM provider refuses every call: ${UNUSABLE_REASON_TEXT[unavailable.reason]}${code}`,
        { retryAfterMs, details: { reason: unavailable.reason, providerCode: unavailable.providerCode } },
      );
    }
    return new AppError('llm_unavailable', 'The LLM provider is failing; the circuit breaker is open', {
      retryAfterMs,
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
      this.unavailableAs = undefined;
      this.lastFailure = undefined;
      this.setState('closed');
      return result;
    } catch (error) {
      if (this.probing !== ticket) throw error;
      this.probing = 0;
      // A counted failure re-opens; anything else was not a verdict on the provider: the next call
      // becomes the probe (the queue dispatches it once this one's slot is back).
      if (this.unusable(error)) this.openUnavailable(error);
      else if (countsAsProviderFailure(error)) {
        this.lastFailure = { message: describeFailure(error), at: this.clock.now() };
        this.unavailableAs = undefined;
        this.onOpened();
      }
      throw error;
    }
  }

  private unusable(error: unknown): error is ProviderError {
    return error instanceof ProviderError && error.unusable !== undefined;
  }

  /** Opens for the long cool-down, with the refusal's reason (again, if it was open for it). */
  private openUnavailable(error: ProviderError): void {
    this.unavailableAs = {
      reason: error.unusable!,
      providerCode: error.options.providerCode,
      providerMessage: error.message,
      since: this.unavailableAs?.since ?? this.clock.now(),
    };
    // A refresh while already open for it keeps the timer: the probe comes when it was due.
    if (this.current === 'open') return;
    this.onOpened(this.unavailableCoolDownMs);
  }

  private onOpened(openForMs = this.resetTimeoutMs): void {
    this.probing = 0;
    this.openedAt = this.clock.now();
    this.openForMs = openForMs;
    this.setState('open', true);
    if (this.halfOpenTimer) this.clock.clearTimeout(this.halfOpenTimer);
    this.halfOpenTimer = this.clock.setTimeout(() => {
      this.halfOpenTimer = undefined;
      this.setState('half_open');
    }, openForMs);
  }

  /** `force`: report a re-opening too (its reason may have changed). */
  private setState(state: BreakerState, force = false): void {
    if (this.current === state && !force) return;
    this.current = state;
    for (const listener of this.listeners) listener.onStateChange(state, this.unavailableAs);
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

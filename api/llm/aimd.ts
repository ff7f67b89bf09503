import type { Clock } from '../clock';

/**
 * Effective concurrency and RPM under provider pushback (docs/ARCHITECTURE.md §7: a 429 slows everyone down).
 * Multiplicative decrease on a 429, at most once per cooldown so that the burst of 429s one overload
 * produces counts once; additive increase after each quiet period back up to the configured limits.
 * Increases are computed lazily from the clock when the limits are read, so no timer is needed.
 */
export interface AimdOptions {
  maxConcurrent: number;
  maxRpm: number;
  /** 0 = no token limit configured (a TPM 429 then lowers the RPM instead). */
  maxTpm?: number;
  clock: Clock;
  /** Multiplier applied on a 429 (0 < factor < 1). */
  decreaseFactor?: number;
  /** 429s within this long after a decrease do not decrease again. */
  cooldownMs?: number;
  /** Quiet time (no 429) before each additive step up. */
  quietPeriodMs?: number;
  /** Step sizes; default 1 call and 5 % of the configured RPM. */
  concurrencyStep?: number;
  rpmStep?: number;
}

export interface EffectiveLimits {
  concurrency: number;
  rpm: number;
  /** Tokens per minute; absent or 0 = no token limit. */
  tpm?: number;
}

/** Which provider limit a 429 named: requests (RPM, concurrency) or tokens (TPM). */
/**
 * Which limit a 429 named: requests (concurrency and RPM shrink), tokens (TPM), or a burst (a sudden
 * surge refused below the RPM: only the start rate shrinks, and climbs back step by step).
 */
export type RateLimitKind = 'requests' | 'tokens' | 'burst';

/**
 * The effective-limits policy the limiter enforces (in-memory here; a shared adapter can keep the
 * same state in Redis so a 429 on one instance slows every instance).
 */
export interface AimdPolicy {
  limits(): EffectiveLimits;
  /** A provider 429; returns true if the limits were lowered. */
  onRateLimited(kind?: RateLimitKind): boolean;
  readonly decreaseCount: number;
}

export class Aimd implements AimdPolicy {
  private readonly clock: Clock;
  private readonly decreaseFactor: number;
  private readonly cooldownMs: number;
  private readonly quietPeriodMs: number;
  private readonly concurrencyStep: number;
  private readonly rpmStep: number;
  private concurrency: number;
  private rpm: number;
  private tpm: number;
  private readonly maxTpm: number;
  private lastDecreaseAt = -Infinity;
  /** Time from which the next quiet period is measured. */
  private quietSince = -Infinity;
  private decreases = 0;

  constructor(private readonly options: AimdOptions) {
    this.clock = options.clock;
    this.decreaseFactor = options.decreaseFactor ?? 0.7;
    this.cooldownMs = options.cooldownMs ?? 5_000;
    this.quietPeriodMs = options.quietPeriodMs ?? 10_000;
    this.concurrencyStep = options.concurrencyStep ?? 1;
    this.rpmStep = options.rpmStep ?? Math.max(1, Math.ceil(options.maxRpm * 0.05));
    this.concurrency = options.maxConcurrent;
    this.rpm = options.maxRpm;
    this.maxTpm = options.maxTpm ?? 0;
    this.tpm = this.maxTpm;
  }

  /** The limits to enforce now. */
  limits(): EffectiveLimits {
    this.recover();
    return { concurrency: this.concurrency, rpm: this.rpm, ...(this.maxTpm > 0 ? { tpm: this.tpm } : {}) };
  }

  /**
   * A provider 429: shrink the limits it named unless we already did within the cooldown. A request
   * 429 shrinks concurrency and RPM; a token 429 shrinks the TPM limit (or, with none configured, the
   * RPM, the only lever left). Returns true if shrunk.
   */
  onRateLimited(kind: RateLimitKind = 'requests'): boolean {
    const now = this.clock.now();
    this.recover();
    this.quietSince = now;
    if (now - this.lastDecreaseAt < this.cooldownMs) return false;
    this.lastDecreaseAt = now;
    this.decreases++;
    if (kind === 'tokens' && this.maxTpm > 0) {
      this.tpm = Math.max(1, Math.floor(this.tpm * this.decreaseFactor));
      return true;
    }
    if (kind === 'requests')
      this.concurrency = Math.max(1, Math.floor(this.concurrency * this.decreaseFactor));
    this.rpm = Math.max(1, Math.floor(this.rpm * this.decreaseFactor));
    return true;
  }

  get decreaseCount(): number {
    return this.decreases;
  }

  private recover(): void {
    if (
      this.concurrency >= this.options.maxConcurrent &&
      this.rpm >= this.options.maxRpm &&
      this.tpm >= this.maxTpm
    )
      return;
    const now = this.clock.now();
    const steps = Math.floor((now - this.quietSince) / this.quietPeriodMs);
    if (steps <= 0) return;
    this.quietSince += steps * this.quietPeriodMs;
    this.concurrency = Math.min(this.options.maxConcurrent, this.concurrency + steps * this.concurrencyStep);
    this.rpm = Math.min(this.options.maxRpm, this.rpm + steps * this.rpmStep);
    this.tpm = Math.min(this.maxTpm, this.tpm + steps * Math.max(1, Math.ceil(this.maxTpm * 0.05)));
  }
}

import type { AimdPolicy, EffectiveLimits } from '../aimd';
import type { Limiter } from '../limiter';

/**
 * This instance's share of the quota while Redis is unreachable: 1/N of each effective limit, N the
 * last known instance count (at least 1). Rounded down: N instances each on their share never add
 * up to more than the quota, even when that leaves a share of 0.
 */
export class QuotaShare {
  constructor(
    private readonly options: {
      /** The shared limiter: its last known effective (AIMD) limits. */
      shared: Pick<Limiter, 'snapshot'>;
      /** This instance's own AIMD, which keeps reacting to 429s during the outage. */
      local?: Pick<AimdPolicy, 'limits'>;
      instances: () => number;
    },
  ) {}

  instances(): number {
    return Math.max(1, Math.floor(this.options.instances()));
  }

  /** The share; any field may be 0 (nothing may start on it). */
  share(): EffectiveLimits {
    const shared = this.options.shared.snapshot().limits;
    const local = this.options.local?.limits();
    const n = this.instances();
    const pick = (a: number | undefined, b: number | undefined) => Math.min(a ?? Infinity, b ?? Infinity);
    const tpm = pick(shared.tpm, local?.tpm);
    return {
      concurrency: Math.floor(pick(shared.concurrency, local?.concurrency) / n),
      rpm: Math.floor(pick(shared.rpm, local?.rpm) / n),
      ...(Number.isFinite(tpm) && tpm > 0 ? { tpm: Math.floor(tpm / n) } : {}),
    };
  }

  /**
   * The limits the fallback in-memory limiter enforces: the share's RPM and TPM (that limiter clamps
   * them to at least 1; the fail-safe limiter refuses a share of 0 itself), and no concurrency limit
   * of its own: the fail-safe limiter counts this instance's calls in flight, shared ones included.
   */
  limits(): EffectiveLimits {
    const share = this.share();
    return { ...share, concurrency: Number.MAX_SAFE_INTEGER };
  }
}

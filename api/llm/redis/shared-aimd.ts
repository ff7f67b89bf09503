import type { AimdPolicy, EffectiveLimits, RateLimitKind } from '../aimd';
import type { RedisLimiter } from './redis-limiter';

/**
 * AIMD whose state lives in Redis (rateLimited-1.lua, and recovery inside tryStart-7.lua), so a 429
 * on one instance slows every instance. `limits()` is what the last reply said; `onRateLimited`
 * fires the shared decrease and answers with this instance's own AIMD, which also keeps the share
 * used during a Redis outage honest.
 */
export class SharedAimd implements AimdPolicy {
  constructor(
    private readonly options: {
      shared: RedisLimiter;
      local: AimdPolicy;
      onError?: (error: unknown) => void;
    },
  ) {}

  limits(): EffectiveLimits {
    return this.options.shared.snapshot().limits;
  }

  onRateLimited(kind: RateLimitKind = 'requests'): boolean {
    // The shared script applies the cooldown across instances; the local one predicts its answer
    // without waiting for the round trip.
    const lowered = this.options.local.onRateLimited(kind);
    this.options.shared.rateLimited(kind).catch((error: unknown) => this.options.onError?.(error));
    return lowered;
  }

  get decreaseCount(): number {
    return Math.max(this.options.shared.decreases, this.options.local.decreaseCount);
  }
}

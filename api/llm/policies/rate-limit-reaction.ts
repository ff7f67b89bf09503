import type { Clock } from '../../clock';
import type { PriorityClass } from '../priority-class';
import type { AimdPolicy } from '../aimd';
import { rateLimitKind } from '../call-errors';
import { ProviderError } from '../provider';
import type { SchedulerEventStream, SchedulerLogger } from '../scheduler-events';
import type { CallContext, CallPolicy, CallStep } from './call-policy';

/** How long a 429 without Retry-After holds every start (the retry's own backoff comes on top). */
const DEFAULT_RATE_LIMIT_HOLD_MS = 1_000;

export interface RateLimitReactionOptions {
  clock: Clock;
  aimd: AimdPolicy;
  /** Holds every start (the request queue, over its limiter: shared by every instance with Redis). */
  starts: { holdStarts(durationMs: number): Promise<void> };
  events: SchedulerEventStream;
  logger?: SchedulerLogger;
}

/**
 * A 429 slows everyone down, not just its caller: AIMD lowers the limit it named (requests or
 * tokens), and the provider's Retry-After holds every start until then, remembered in the limiter
 * so that new chats wait behind it (or are refused, when it is longer than they can wait) instead
 * of each probing the provider again. It reacts inside the queue slot, before the slot goes back,
 * so no waiting call is started into the same 429. The error itself goes on to the retry policy.
 */
export class RateLimitReaction implements CallPolicy {
  private lastRateLimitedAt = -Infinity;

  constructor(private readonly options: RateLimitReactionOptions) {}

  async execute(next: CallStep, signal: AbortSignal, call: CallContext) {
    try {
      return await next(signal);
    } catch (error) {
      // Transient refusals only: a used-up quota or a refused key says nothing of the rate, and
      // shrinking the limits for it would only slow the recovery once a person has acted.
      if (error instanceof ProviderError && (error.kind === 'rate_limited' || error.kind === 'burst'))
        this.react(call.meta.agentType, error);
      throw error;
    }
  }

  /** True when the provider answered 429 within the last `withinMs`. */
  rateLimitedWithin(withinMs: number): boolean {
    return this.options.clock.now() - this.lastRateLimitedAt < withinMs;
  }

  private react(agentType: PriorityClass, error: ProviderError): void {
    const { aimd, events, logger } = this.options;
    this.lastRateLimitedAt = this.options.clock.now();
    const decreased = aimd.onRateLimited(rateLimitKind(error));
    events.emit({ type: 'rate_limited', agentType, decreased });
    if (decreased) logger?.warn({ limits: aimd.limits() }, 'Provider answered 429; limits reduced');
    this.options.starts
      .holdStarts(error.retryAfterMs ?? DEFAULT_RATE_LIMIT_HOLD_MS)
      .catch((failure: unknown) =>
        logger?.warn({ error: String(failure) }, 'Could not record the provider hold'),
      );
  }
}

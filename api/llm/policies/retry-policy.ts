import type { Clock } from '../../clock';
import { AppError, ERROR_CODES } from '../../errors';
import { backoffDelay, sleep, type BackoffPolicy } from '../backoff';
import { providerFailureCode } from '../call-errors';
import { ProviderError } from '../provider';
import { isFallbackable } from '../routing/fallbackable';
import type { SchedulerEventStream } from '../scheduler-events';
import type { CallContext, CallPolicy, CallStep } from './call-policy';

export interface RetryPolicyOptions {
  clock: Clock;
  events: SchedulerEventStream;
  /** Attempts in total, the first included. */
  maxAttempts: number;
  backoff: BackoffPolicy;
}

/**
 * The one retry loop of the system: the provider client never retries on its own, so a failed
 * attempt is retried here or not at all. Retryable failures (429, 5xx, network) are retried with
 * exponential backoff and full jitter, never earlier than the provider's Retry-After, only before
 * the first streamed delta (the user has seen text: a retry would repeat it), and never past the
 * call's deadline. Each retry runs the whole path below again, the queue slot included, so it is
 * counted against the limits like any start.
 */
export class RetryPolicy implements CallPolicy {
  constructor(private readonly options: RetryPolicyOptions) {}

  async execute(next: CallStep, signal: AbortSignal, call: CallContext) {
    for (;;) {
      call.progress.attempts++;
      let delayMs: number;
      try {
        return await next(signal);
      } catch (error) {
        if (!(error instanceof ProviderError)) throw error;
        delayMs = this.retryDelay(error, call) ?? this.giveUp(error);
      }
      this.options.events.emit({
        type: 'retry',
        agentType: call.meta.agentType,
        attempt: call.progress.attempts,
        delayMs,
      });
      await sleep(this.options.clock, delayMs, signal);
    }
  }

  /** How long to wait before the next attempt; undefined when there is none. */
  private retryDelay(error: ProviderError, call: CallContext): number | undefined {
    const { progress } = call;
    if (!error.retryable || progress.deltaSeen || progress.attempts >= this.options.maxAttempts)
      return undefined;
    // Another endpoint can take the call now: going there beats waiting here (routing gateway).
    if (call.meta.fallbackAvailable && isFallbackable(error)) return undefined;
    const delayMs = backoffDelay(progress.attempts, error.retryAfterMs, this.options.backoff);
    return this.options.clock.now() + delayMs < call.deadline ? delayMs : undefined;
  }

  private giveUp(error: ProviderError): never {
    const code = providerFailureCode(error);
    // The provider's own words say what a person has to fix (or how long it stayed silent); a
    // passing failure keeps the registry's message.
    const message = error.unusable
      ? `${ERROR_CODES[code].message}: ${error.message}`
      : error.kind === 'timeout'
        ? error.message
        : undefined;
    throw new AppError(code, message, {
      cause: error,
      retryAfterMs: error.retryAfterMs,
      details: {
        kind: error.kind,
        ...(error.unusable ? { reason: error.unusable, providerCode: error.options.providerCode } : {}),
        ...(error.kind === 'timeout' ? { firstByte: true } : {}),
      },
    });
  }
}

import type { Clock, TimerHandle } from '../../clock';
import { AppError, abortReason } from '../../errors';
import { ProviderError } from '../provider';
import type { CallContext, CallPolicy, CallStep } from './call-policy';

export interface FirstByteTimeoutOptions {
  clock: Clock;
  /** The timeout before enough first bytes were measured (0 = the policy is off). */
  coldMs: number;
  /** The measured timeout never goes below this. */
  floorMs: number;
  /** ... nor above this (the call's own timeout: past it the call's deadline acts anyway). */
  ceilingMs: number;
  /** First bytes measured before the measured timeout replaces the cold one. */
  minSamples?: number;
}

/** The measured timeout: this many times the 99th percentile of the endpoint's recent first bytes. */
const FACTOR = 3;
const PERCENTILE = 0.99;
const SAMPLES = 256;
const DEFAULT_MIN_SAMPLES = 20;

/**
 * A provider that accepts the connection and never answers is found in seconds, not at the call's
 * deadline: an attempt with no byte of its response within the first-byte timeout is aborted and
 * fails as a provider failure (ProviderError `timeout`) — the breaker counts it, health reports it
 * at once, and a route with another endpoint may fall back (`fallbackable`), since no token reached
 * anyone. The timeout comes from this endpoint's own first-byte times (3 × their p99, within
 * [floor, ceiling]); until 20 are measured, the cold value. Any chunk is a byte: a thinking model
 * streaming its reasoning is making progress. Calls answered in one piece (not streamed) are not
 * timed here: their first byte is their last.
 *
 * One policy per endpoint (its times are the endpoint's); it sits inside the breaker, so its verdict
 * is the breaker's, and outside the deadline's timeout policy.
 */
export class FirstByteTimeoutPolicy implements CallPolicy {
  private readonly samples: number[] = [];
  private next = 0;
  private measured?: number;

  constructor(private readonly options: FirstByteTimeoutOptions) {}

  /** The timeout the next attempt gets, ms. */
  timeoutMs(): number {
    const { coldMs, floorMs, ceilingMs } = this.options;
    if (this.samples.length < (this.options.minSamples ?? DEFAULT_MIN_SAMPLES)) return coldMs;
    if (this.measured === undefined) {
      const sorted = [...this.samples].sort((a, b) => a - b);
      const p99 = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * PERCENTILE))];
      this.measured = Math.min(ceilingMs, Math.max(floorMs, Math.ceil(p99 * FACTOR)));
    }
    return this.measured;
  }

  async execute(next: CallStep, signal: AbortSignal, call: CallContext) {
    if (this.options.coldMs <= 0 || call.request.stream === false) return next(signal);
    const { clock } = this.options;
    const timeoutMs = this.timeoutMs();
    const controller = new AbortController();
    const onCallAbort = () => controller.abort(abortReason(signal));
    signal.addEventListener('abort', onCallAbort, { once: true });
    if (signal.aborted) onCallAbort();
    const startedAt = clock.now();
    let timedOut = false;
    let timer: TimerHandle | undefined = clock.setTimeout(() => {
      timer = undefined;
      timedOut = true;
      controller.abort(
        new AppError('llm_timeout', `No first byte within ${timeoutMs} ms`, { details: { firstByte: true } }),
      );
    }, timeoutMs);
    call.progress.onFirstByte = () => {
      if (timer === undefined) return;
      clock.clearTimeout(timer);
      timer = undefined;
      this.record(clock.now() - startedAt);
    };
    try {
      const result = await next(controller.signal);
      if (timedOut) throw this.failure(timeoutMs);
      return result;
    } catch (error) {
      throw timedOut ? this.failure(timeoutMs) : error;
    } finally {
      if (timer !== undefined) clock.clearTimeout(timer);
      call.progress.onFirstByte = undefined;
      signal.removeEventListener('abort', onCallAbort);
    }
  }

  private failure(timeoutMs: number): ProviderError {
    return new ProviderError(
      'timeout',
      `The provider sent no byte within ${timeoutMs} ms (first-byte timeout)`,
    );
  }

  private record(ms: number): void {
    if (this.samples.length < SAMPLES) this.samples.push(ms);
    else this.samples[this.next] = ms;
    this.next = (this.next + 1) % SAMPLES;
    this.measured = undefined;
  }
}

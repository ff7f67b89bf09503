import type { Clock } from '../../clock';
import type { LatencyEstimator } from '../latency-estimator';
import type { CallContext, CallPolicy, CallStep } from './call-policy';

export interface LatencyPolicyOptions {
  clock: Clock;
  /** The provider latency admission and the queue's start budget work with. */
  latency: LatencyEstimator;
  /** The status page's latency histogram (the queue's SchedulerStats). */
  stats: { recordLatency(latencyMs: number): void };
}

/**
 * Times each attempt on the provider: the call's process time, and, for completed attempts only,
 * the latency the estimates divide by (a failure or an abort says nothing of how long an answer
 * takes). The attempt counts as in flight meanwhile, which a cold admission reads.
 */
export class LatencyPolicy implements CallPolicy {
  constructor(private readonly options: LatencyPolicyOptions) {}

  async execute(next: CallStep, signal: AbortSignal, call: CallContext) {
    const { clock, latency } = this.options;
    const startedAt = clock.now();
    call.progress.attemptStartedAt = startedAt;
    const handle = latency.started();
    let completedMs: number | undefined;
    try {
      const result = await next(signal);
      completedMs = clock.now() - startedAt;
      call.progress.processMs += completedMs;
      this.options.stats.recordLatency(completedMs);
      return result;
    } catch (error) {
      call.progress.processMs += clock.now() - startedAt;
      throw error;
    } finally {
      latency.ended(handle, completedMs);
    }
  }

  /** The attempt's first delta arrived: the time to first token, for the status page. */
  firstDelta(call: CallContext): void {
    this.options.latency.firstToken(this.options.clock.now() - call.progress.attemptStartedAt);
  }
}

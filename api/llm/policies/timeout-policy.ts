import type { Clock } from '../../clock';
import { AppError, abortReason } from '../../errors';
import type { SchedulerEventStream } from '../scheduler-events';
import type { CallContext, CallPolicy, CallStep } from './call-policy';

/**
 * The call's deadline on each attempt in flight: at the deadline the attempt is aborted with
 * llm_timeout. The deadline covers the queue wait and earlier attempts too, so it may leave this
 * attempt only part of the call's timeout; then timing out is not a verdict on the provider and the
 * breaker must not count it: the error says `ownDeadline`. Half of the timeout of its own is a fair
 * chance for the provider.
 *
 * Whatever aborted the attempt (the deadline or the caller) is what it fails with, even when the
 * provider reports its own AbortError, or answered at the very moment: an aborted call never
 * returns a result.
 */
export class TimeoutPolicy implements CallPolicy {
  constructor(private readonly options: { clock: Clock; events: SchedulerEventStream }) {}

  async execute(next: CallStep, signal: AbortSignal, call: CallContext) {
    const { clock } = this.options;
    const controller = new AbortController();
    const onCallAbort = () => controller.abort(abortReason(signal));
    signal.addEventListener('abort', onCallAbort, { once: true });
    // The caller may have aborted before this attempt listened: its 'abort' event is gone.
    if (signal.aborted) onCallAbort();
    const startedAt = clock.now();
    const ownDeadline = call.deadline - startedAt < call.callTimeoutMs / 2;
    const timer = clock.setTimeout(
      () =>
        controller.abort(
          new AppError('llm_timeout', undefined, ownDeadline ? { details: { ownDeadline: true } } : {}),
        ),
      call.deadline - startedAt,
    );
    try {
      const result = await next(controller.signal);
      if (controller.signal.aborted) throw controller.signal.reason;
      return result;
    } catch (error) {
      if (!controller.signal.aborted) throw error;
      const reason = abortReason(controller.signal);
      if (reason.code === 'llm_timeout')
        this.options.events.emit({ type: 'timeout', agentType: call.meta.agentType, where: 'in_flight' });
      throw reason;
    } finally {
      clock.clearTimeout(timer);
      signal.removeEventListener('abort', onCallAbort);
    }
  }
}

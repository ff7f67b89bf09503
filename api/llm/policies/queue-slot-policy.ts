import { AppError } from '../../errors';
import type { Usage } from '../provider';
import type { RequestQueue, Slot } from '../request-queue';
import type { SchedulerEventStream } from '../scheduler-events';
import type { CallContext, CallPolicy, CallStep } from './call-policy';

/**
 * A slot of the provider quota around each attempt: the request queue decides when it starts
 * (priority with aging, fairness between users, the limiter's concurrency, RPM and TPM, the
 * breaker's state); the slot is released exactly once, whatever happens below, and an answered
 * call settles its token reservation with the real usage — as does a call cut short whose provider
 * reported its usage so far (Ark's `chunk_include_usage`); without it the reservation stands.
 */
export class QueueSlotPolicy implements CallPolicy {
  constructor(private readonly options: { queue: RequestQueue; events: SchedulerEventStream }) {}

  async execute(next: CallStep, signal: AbortSignal, call: CallContext) {
    const slot = await this.acquire(signal, call);
    const { progress, meta } = call;
    progress.waitMs += slot.waitedMs;
    this.options.events.emit({
      type: 'start',
      agentType: meta.agentType,
      attempt: progress.attempts,
      waitMs: slot.waitedMs,
    });
    progress.attemptUsage = undefined;
    try {
      const result = await next(signal);
      slot.settle(result.usage.promptTokens + result.usage.completionTokens);
      return result;
    } catch (error) {
      // Set by the provider's callbacks meanwhile (TypeScript still sees the reset above).
      const usage = progress.attemptUsage as Usage | undefined;
      if (usage) slot.settle(usage.promptTokens + usage.completionTokens);
      throw error;
    } finally {
      slot.release();
    }
  }

  private async acquire(signal: AbortSignal, call: CallContext): Promise<Slot> {
    const { meta, progress } = call;
    try {
      return await this.options.queue.acquire(
        {
          agentType: meta.agentType,
          userId: meta.userId,
          conversationId: meta.conversationId,
          runId: meta.runId,
          estimatedTokens: call.estimatedTokens,
          deadline: call.deadline,
          firstEnqueuedAt: call.firstEnqueuedAt,
          ...(meta.maxWaitMs !== undefined ? { maxWaitMs: meta.maxWaitMs } : {}),
          // A retry already holds its place in the chat's work: the queue bound does not shed it.
          bypassBound: call.admitted || progress.attempts > 1,
        },
        signal,
      );
    } catch (error) {
      if (error instanceof AppError) this.refused(error, call);
      throw error;
    }
  }

  private refused(error: AppError, call: CallContext): void {
    const { events } = this.options;
    const agentType = call.meta.agentType;
    if (error.code === 'overloaded') events.emit({ type: 'shed', reason: 'queue_full' });
    if (error.code === 'queue_timeout') events.emit({ type: 'timeout', agentType, where: 'queue' });
    // The breaker was open, or opened while the call waited: failed fast, no permit taken.
    if (error.code === 'llm_unavailable') events.emit({ type: 'breaker_rejected', agentType });
  }
}

import type { Config } from '../../config';
import type { Clock } from '../clock';
import { AppError, abortReason, toAppError } from '../errors';
import { outcomeOf } from './call-errors';
import type { LlmCallMeta, LlmCallOptions, LlmCallOutcome } from './llm-gateway';
import { estimatePromptTokens, type CompletionRequest, type Provider } from './provider';
import type { SchedulerEventStream } from './scheduler-events';
import type { CallOutcome } from './scheduler-stats';
import { wrap, type CallContext, type CallPolicy, type CallStep } from './policies/call-policy';
import type { LatencyPolicy } from './policies/latency-policy';
import type { RateLimitReaction } from './policies/rate-limit-reaction';

/**
 * The path of one LLM call, outermost first (docs/ARCHITECTURE.md, section 3):
 *
 *   response cache  cache/caching-gateway.ts         a hit, or an identical call in flight, ends
 *                                                    here: an LlmGateway in front of the scheduler,
 *                                                    so a hit is no call of the chat and takes no quota
 *   the call        CallPath.run, below              its deadline (LLM_TIMEOUT, capped by the
 *                                                    chat's); its end, reported once
 *   retry           policies/retry-policy.ts         the one retry loop; each retry goes back
 *                                                    through everything below, the slot included
 *   queue slot      policies/queue-slot-policy.ts    priority, fairness, the limiter; the queue
 *                                                    reads the breaker's state (no slot while open)
 *   429 reaction    policies/rate-limit-reaction.ts  AIMD decrease, every start held, before the
 *                                                    slot goes back
 *   latency         policies/latency-policy.ts       the attempt's time on the provider
 *   breaker         policies/breaker-policy.ts       fail fast while open; hears every verdict;
 *                                                    a refusal only a person can end opens it long
 *   first byte      policies/first-byte-timeout-policy.ts  no byte within T → a provider failure
 *                                                    (T from the endpoint's own first-byte times)
 *   timeout         policies/timeout-policy.ts       the deadline in flight → llm_timeout (a verdict
 *                                                    for the breaker unless the queue ate the budget)
 *   provider        `providerStep`, below            deltas to the caller; an abort as its reason
 *
 * The policies are built apart (create-llm-scheduler.ts) and only composed here; none knows
 * another, and all report to one SchedulerEventStream.
 */

/** The policies of the path, each built apart; `wrap` below is the order. */
export interface CallPolicies {
  retry: CallPolicy;
  queueSlot: CallPolicy;
  rateLimitReaction: RateLimitReaction;
  latency: LatencyPolicy;
  breaker: CallPolicy;
  /** Absent: attempts are not timed on their first byte (a provider that cannot report it). */
  firstByte?: CallPolicy;
  timeout: CallPolicy;
}

export interface CallPathOptions {
  config: Pick<Config, 'llm'>;
  clock: Clock;
  provider: Provider;
  events: SchedulerEventStream;
  policies: CallPolicies;
}

export class CallPath {
  private readonly policy: CallPolicy;

  constructor(private readonly parts: CallPathOptions) {
    const { retry, queueSlot, rateLimitReaction, latency, breaker, firstByte, timeout } = parts.policies;
    this.policy = firstByte
      ? wrap(retry, queueSlot, rateLimitReaction, latency, breaker, firstByte, timeout)
      : wrap(retry, queueSlot, rateLimitReaction, latency, breaker, timeout);
  }

  /** Runs one call down the path; `admitted`: a call of an admitted chat (never shed by the bound). */
  async run(
    meta: LlmCallMeta,
    request: CompletionRequest,
    options: LlmCallOptions,
    admitted: boolean,
  ): Promise<LlmCallOutcome> {
    const { clock, config } = this.parts;
    const llm = config.llm;
    const firstEnqueuedAt = clock.now();
    const callTimeoutMs = meta.timeoutMs ?? llm.timeoutMs;
    const deadline = Math.min(firstEnqueuedAt + callTimeoutMs, meta.chatDeadline ?? Infinity);
    const call: CallContext = {
      meta,
      request,
      onDelta: options.onDelta,
      onReasoning: options.onReasoning,
      deadline,
      callTimeoutMs,
      firstEnqueuedAt,
      estimatedTokens: estimatePromptTokens(request) + (request.maxTokens ?? llm.maxOutputTokens),
      admitted,
      progress: {
        attempts: 0,
        waitMs: 0,
        processMs: 0,
        attemptStartedAt: firstEnqueuedAt,
        deltaSeen: false,
        reasoningDeltas: 0,
      },
    };
    try {
      const result = await this.policy.execute(
        (signal) => this.providerStep(signal, call),
        options.signal,
        call,
      );
      this.end(call, 'success');
      const { progress } = call;
      return {
        ...result,
        waitMs: Math.round(progress.waitMs),
        processMs: Math.round(progress.processMs),
        attempts: progress.attempts,
      };
    } catch (error) {
      let failure = toAppError(error);
      // When the chat's deadline is what ran out, say so: the whole chat is over, not one call.
      // (A first-byte timeout is the provider's silence, not the deadline: it keeps its code.)
      const chatBound = meta.chatDeadline !== undefined && deadline === meta.chatDeadline;
      const deadlineCode = failure.code === 'queue_timeout' || failure.code === 'llm_timeout';
      if (chatBound && deadlineCode && failure.details?.firstByte !== true) {
        failure = new AppError('chat_timeout', undefined, { cause: failure });
      }
      this.end(call, outcomeOf(failure.code), failure.code);
      throw failure;
    }
  }

  /** True when the provider answered 429 within the last `withinMs`. */
  rateLimitedWithin(withinMs: number): boolean {
    return this.parts.policies.rateLimitReaction.rateLimitedWithin(withinMs);
  }

  /** The provider itself, at the bottom of the path. */
  private async providerStep(signal: AbortSignal, call: CallContext): ReturnType<CallStep> {
    const { progress } = call;
    let firstByte = true;
    try {
      return await this.parts.provider.complete(call.request, {
        signal,
        onDelta: (text) => {
          if (signal.aborted) return;
          if (!progress.deltaSeen) this.parts.policies.latency.firstDelta(call);
          progress.deltaSeen = true;
          call.onDelta?.(text);
        },
        onReasoning: (text) => {
          if (signal.aborted) return;
          // Shown to the user as it streams: a retry would repeat it, as it would repeat text.
          progress.deltaSeen = true;
          progress.reasoningDeltas++;
          call.onReasoning?.(text);
        },
        onUsage: (usage) => {
          progress.attemptUsage = usage;
        },
        onProgress: () => {
          if (!firstByte) return;
          firstByte = false;
          progress.onFirstByte?.();
        },
      });
    } catch (error) {
      // The provider reports any abort as its AbortError; the breaker must see why: the deadline
      // (the provider did not answer) counts against it, a caller's abort does not.
      throw signal.aborted ? abortReason(signal) : error;
    }
  }

  private end(call: CallContext, outcome: CallOutcome, code?: string): void {
    const { progress } = call;
    if (progress.reasoningDeltas > 0)
      this.parts.events.emit({
        type: 'reasoning',
        agentType: call.meta.agentType,
        deltas: progress.reasoningDeltas,
      });
    this.parts.events.emit({
      type: 'end',
      agentType: call.meta.agentType,
      outcome,
      code,
      waitMs: Math.round(progress.waitMs),
      processMs: Math.round(progress.processMs),
    });
  }
}

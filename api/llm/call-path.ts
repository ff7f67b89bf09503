import type { Config } from '../../config';
import type { Clock } from '../clock';
import { AppError, abortReason, toAppError } from '../errors';
import type { AimdPolicy } from './aimd';
import type { BackoffPolicy } from './backoff';
import { outcomeOf } from './call-errors';
import type { LatencyEstimator } from './latency-estimator';
import type { LlmCallMeta, LlmCallOptions, LlmCallOutcome } from './llm-gateway';
import { estimatePromptTokens, type CompletionRequest, type Provider } from './provider';
import type { ProviderBreaker } from './provider-breaker';
import type { RequestQueue } from './request-queue';
import type { SchedulerEventStream, SchedulerLogger } from './scheduler-events';
import type { CallOutcome } from './scheduler-stats';
import { BreakerPolicy } from './policies/breaker-policy';
import { wrap, type CallContext, type CallPolicy, type CallStep } from './policies/call-policy';
import { LatencyPolicy } from './policies/latency-policy';
import { QueueSlotPolicy } from './policies/queue-slot-policy';
import { RateLimitReaction } from './policies/rate-limit-reaction';
import { RetryPolicy } from './policies/retry-policy';
import { TimeoutPolicy } from './policies/timeout-policy';

/**
 * The path of one LLM call, outermost first:
 *
 *   response cache   cache/caching-gateway.ts      a hit, or an identical call in flight, ends here
 *                                                 (an LlmGateway in front of the scheduler: a hit
 *                                                 is not a call of the chat and takes no quota)
 *   the call         CallPath.run, below           its deadline (LLM_TIMEOUT, capped by the chat's);
 *                                                 its end, counted once
 *   retry            policies/retry-policy.ts      the one retry loop; each retry goes back through
 *                                                 everything below, the queue slot included
 *   queue slot       policies/queue-slot-policy.ts priority, fairness, the limiter; reads the
 *                                                 breaker's state (no slot while it is open)
 *   429 reaction     policies/rate-limit-reaction.ts  AIMD decrease, every start held; before the
 *                                                 slot goes back
 *   latency          policies/latency-policy.ts    the attempt's time on the provider
 *   timeout          policies/timeout-policy.ts    the deadline in flight → llm_timeout
 *   breaker          policies/breaker-policy.ts    fail fast while open; hears every verdict,
 *                                                 the timeout's included
 *   provider         `providerStep`, below         deltas to the caller; an abort as its reason
 *
 * The timeout sits outside the breaker so that an answer arriving as the deadline fires still
 * counts as the provider's success, while the call fails with llm_timeout all the same.
 * Every policy reports to one SchedulerEventStream; none knows another.
 */

export interface CallPathParts {
  config: Pick<Config, 'llm'>;
  clock: Clock;
  provider: Provider;
  queue: RequestQueue;
  aimd: AimdPolicy;
  breaker: ProviderBreaker;
  latency: LatencyEstimator;
  events: SchedulerEventStream;
  logger?: SchedulerLogger;
  /** Attempts in total, the first included. */
  maxAttempts: number;
  backoff: BackoffPolicy;
}

export class CallPath {
  private readonly policy: CallPolicy;
  private readonly rateLimits: RateLimitReaction;
  private readonly latency: LatencyPolicy;

  constructor(private readonly parts: CallPathParts) {
    const { clock, events, logger, queue } = parts;
    this.rateLimits = new RateLimitReaction({ clock, aimd: parts.aimd, starts: queue, events, logger });
    this.latency = new LatencyPolicy({ clock, latency: parts.latency, stats: queue.stats });
    this.policy = wrap(
      new RetryPolicy({ clock, events, maxAttempts: parts.maxAttempts, backoff: parts.backoff }),
      new QueueSlotPolicy({ queue, events }),
      this.rateLimits,
      this.latency,
      new TimeoutPolicy({ clock, events }),
      new BreakerPolicy({ breaker: parts.breaker, events, logger }),
    );
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
      deadline,
      callTimeoutMs,
      firstEnqueuedAt,
      estimatedTokens: estimatePromptTokens(request) + (request.maxTokens ?? llm.maxOutputTokens),
      admitted,
      progress: { attempts: 0, waitMs: 0, processMs: 0, attemptStartedAt: firstEnqueuedAt, deltaSeen: false },
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
      const chatBound = meta.chatDeadline !== undefined && deadline === meta.chatDeadline;
      if (chatBound && (failure.code === 'queue_timeout' || failure.code === 'llm_timeout')) {
        failure = new AppError('chat_timeout', undefined, { cause: failure });
      }
      this.end(call, outcomeOf(failure.code), failure.code);
      throw failure;
    }
  }

  /** True when the provider answered 429 within the last `withinMs`. */
  rateLimitedWithin(withinMs: number): boolean {
    return this.rateLimits.rateLimitedWithin(withinMs);
  }

  /** The provider itself, at the bottom of the path. */
  private async providerStep(signal: AbortSignal, call: CallContext): ReturnType<CallStep> {
    const { progress } = call;
    try {
      return await this.parts.provider.complete(call.request, {
        signal,
        onDelta: (text) => {
          if (signal.aborted) return;
          if (!progress.deltaSeen) this.latency.firstDelta(call);
          progress.deltaSeen = true;
          call.onDelta?.(text);
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

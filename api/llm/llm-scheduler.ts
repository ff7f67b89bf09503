import type { Clock } from '../clock';
import { AppError, abortReason, toAppError } from '../errors';
import type { AgentName } from '../agents/agent-name';
import { AdmittedChats } from './admitted-chats';
import type { AimdPolicy } from './aimd';
import type { LatencyEstimator } from './latency-estimator';
import type { Limiter } from './limiter';
import type {
  Admission,
  AdmissionRequest,
  LlmCallMeta,
  LlmCallOptions,
  LlmCallOutcome,
  LlmGateway,
  RunHolds,
} from './llm-gateway';
import {
  ProviderError,
  estimatePromptTokens,
  type CompletionRequest,
  type CompletionResult,
  type Provider,
} from './provider';
import type { BreakerState, ProviderBreaker } from './provider-breaker';
import type { QueueItem, RequestQueue, Slot } from './request-queue';
import type { CallOutcome } from './scheduler-stats';
import type { LlmSchedulerOptions, SchedulerStatus } from './llm-scheduler-options';
import { backoffDelay, sleep, type BackoffPolicy } from './backoff';
import { outcomeOf, providerFailureCode, rateLimitKind } from './call-errors';
import type { SchedulerCounters, SchedulerEvent } from './scheduler-events';

export type {
  SchedulerCounters,
  SchedulerEvent,
  SchedulerLogger,
  SchedulerMetrics,
} from './scheduler-events';
export type {
  LlmSchedulerOptions,
  LlmSchedulerParts,
  RetryOptions,
  SchedulerStatus,
} from './llm-scheduler-options';

/**
 * The LlmGateway every agent calls: admission → queue (priorities, fairness, limits) → circuit
 * breaker → provider, with the one retry loop of the system (DESIGN.md §6): retryable failures (429,
 * 5xx, network) are retried with exponential backoff and full jitter, never earlier than the
 * provider's Retry-After, only before the first streamed delta, and never past the call's deadline.
 * Every retry goes back through the queue, so it is counted against the limits like any start.
 *
 * Its policies (limiter, AIMD, breaker, admission, latency estimate) and its queue are built by the
 * composition root (create-llm-scheduler.ts) and handed in; this class only composes them.
 */

type AttemptResult = { done: CompletionResult } | { retryInMs: number };

/** How long a 429 without Retry-After holds every start (the retry's own backoff comes on top). */
const DEFAULT_RATE_LIMIT_HOLD_MS = 1_000;
/** A 429 within this long makes the provider count as rate-limiting (health: degraded). */
const RATE_LIMITED_RECENTLY_MS = 60_000;

export class LlmScheduler implements LlmGateway, RunHolds {
  readonly queue: RequestQueue;
  private readonly clock: Clock;
  private readonly provider: Provider;
  private readonly llm: LlmSchedulerOptions['config']['llm'];
  private readonly aimd: AimdPolicy;
  private readonly limiter: Limiter;
  private readonly breaker: ProviderBreaker;
  private readonly latency: LatencyEstimator;
  private readonly random: () => number;
  private readonly maxAttempts: number;
  private readonly backoffPolicy: BackoffPolicy;
  private readonly chats: AdmittedChats;
  private refusingWhilePaused = false;
  private lastRateLimitedAt = -Infinity;
  private readonly counters: SchedulerCounters = {
    starts: 0,
    rateLimited: 0,
    retries: 0,
    queueTimeouts: 0,
    inFlightTimeouts: 0,
    shed: 0,
    breakerRejections: 0,
    aimdDecreases: 0,
  };

  constructor(private readonly options: LlmSchedulerOptions) {
    const { parts } = options;
    this.llm = options.config.llm;
    this.clock = options.clock;
    this.provider = options.provider;
    this.queue = parts.queue;
    this.limiter = parts.limiter;
    this.aimd = parts.aimd;
    this.breaker = parts.breaker;
    this.latency = parts.latency;
    this.chats = new AdmittedChats();
    this.random = options.random ?? Math.random;
    this.maxAttempts = Math.max(1, options.retry?.maxAttempts ?? 4);
    this.backoffPolicy = {
      baseDelayMs: options.retry?.baseDelayMs ?? 500,
      maxDelayMs: options.retry?.maxDelayMs ?? 20_000,
      random: this.random,
    };
    this.breaker.addListener({
      onStateChange: (state) => {
        this.emit({ type: 'breaker', state });
        this.options.logger?.warn({ state }, 'LLM provider circuit breaker changed state');
      },
      onGateChange: () => this.queue.wake(),
    });
  }

  /**
   * Registers a chat that admission (the chat line, api/llm/admission.ts) let in: its calls are
   * never shed by the queue bound, and its call count is measured. Never refuses.
   */
  async admit(request: AdmissionRequest): Promise<Admission> {
    return this.chats.admit(request.runId);
  }

  async complete(
    meta: LlmCallMeta,
    request: CompletionRequest,
    options: LlmCallOptions,
  ): Promise<LlmCallOutcome> {
    // The caller's signal (the run's) cancels the call wherever it is: queued, in flight or
    // sleeping before a retry. There is no second cancellation path.
    if (options.signal.aborted) throw abortReason(options.signal);
    // Every call of an admitted chat is served: admission bounded the chats, so the queue bound
    // must not shed a chat's later calls (tool rounds, revisions) after quota was spent on it.
    const admitted = meta.runId !== undefined && this.chats.recordCall(meta.runId);
    return this.run(meta, request, options, admitted);
  }

  /** Holds a run's calls out of dispatch (its client left; see RunHolds). */
  hold(runId: string): void {
    this.queue.park(runId);
  }

  release(runId: string): void {
    this.queue.unpark(runId);
  }

  breakerState(): BreakerState {
    return this.breaker.state;
  }

  /** True while the provider has answered 429 recently or asked every call to wait. */
  isRateLimited(): boolean {
    return (
      this.clock.now() - this.lastRateLimitedAt < RATE_LIMITED_RECENTLY_MS ||
      this.limiter.snapshot().heldUntil > 0
    );
  }

  status(): SchedulerStatus {
    return {
      ...this.queue.status(),
      paused: this.queue.isPaused,
      refusingNewChats: this.queue.isPaused && this.refusingWhilePaused,
      admittedChats: this.chats.count,
      parked: this.queue.parkedLength,
      latencyEstimateMs: roundOrNull(this.latency.estimateMs()),
      firstTokenMs: roundOrNull(this.latency.firstTokenMs),
      providerHoldMs: Math.round(this.providerHoldMs()),
      rateLimited: this.isRateLimited(),
      breaker: this.breaker.state,
      counters: { ...this.counters, aimdDecreases: this.aimd.decreaseCount },
    };
  }

  /** How much longer a provider-wide Retry-After holds every start (0 = none). */
  private providerHoldMs(): number {
    const { heldUntil } = this.limiter.snapshot();
    return heldUntil > 0 ? Math.max(0, heldUntil - this.clock.now()) : 0;
  }

  items(): QueueItem[] {
    return this.queue.items();
  }

  /**
   * Stops dispatch; waiting calls keep their deadlines and new chats are still admitted into the
   * bounded queue, unless the operator also chose to refuse new chats meanwhile.
   */
  pause(options: { refuseNewChats?: boolean } = {}): void {
    this.refusingWhilePaused = options.refuseNewChats ?? false;
    this.queue.pause();
  }

  resume(): void {
    this.refusingWhilePaused = false;
    this.queue.resume();
  }

  get isPaused(): boolean {
    return this.queue.isPaused;
  }

  /** An operator paused the queue and chose to refuse new chats meanwhile (admission asks). */
  get isRefusingNewChats(): boolean {
    return this.queue.isPaused && this.refusingWhilePaused;
  }

  clear(): number {
    return this.queue.clear();
  }

  /** Stops the breaker's and the limiter's resources; queued calls are left to the caller's shutdown path. */
  async close(): Promise<void> {
    this.breaker.shutdown();
    await this.limiter.close?.();
  }

  private async run(
    meta: LlmCallMeta,
    request: CompletionRequest,
    options: LlmCallOptions,
    admitted: boolean,
  ): Promise<LlmCallOutcome> {
    const signal = options.signal;
    const firstEnqueuedAt = this.clock.now();
    const callTimeoutMs = meta.timeoutMs ?? this.llm.timeoutMs;
    const deadline = Math.min(firstEnqueuedAt + callTimeoutMs, meta.chatDeadline ?? Infinity);
    const estimatedTokens = estimatePromptTokens(request) + (request.maxTokens ?? this.llm.maxOutputTokens);
    const progress = { attempts: 0, waitMs: 0, processMs: 0, deltaSeen: false };
    try {
      for (;;) {
        // While the breaker is open, fail before spending a slot and an RPM start.
        try {
          this.breaker.assertNotOpen();
        } catch (error) {
          this.counters.breakerRejections++;
          throw error;
        }
        progress.attempts++;
        let slot: Slot;
        try {
          slot = await this.queue.acquire(
            {
              agentType: meta.agentType,
              userId: meta.userId,
              conversationId: meta.conversationId,
              runId: meta.runId,
              estimatedTokens,
              deadline,
              firstEnqueuedAt,
              bypassBound: admitted || progress.attempts > 1,
            },
            signal,
          );
        } catch (error) {
          if (error instanceof AppError && error.code === 'overloaded') {
            this.counters.shed++;
            this.emit({ type: 'shed', reason: 'queue_full' });
          }
          if (error instanceof AppError && error.code === 'queue_timeout') {
            this.counters.queueTimeouts++;
            this.emit({ type: 'timeout', agentType: meta.agentType, where: 'queue' });
          }
          // The breaker opened while the call was queued: failed fast, no permit taken.
          if (error instanceof AppError && error.code === 'llm_unavailable')
            this.counters.breakerRejections++;
          throw error;
        }
        progress.waitMs += slot.waitedMs;
        this.counters.starts++;
        this.emit({
          type: 'start',
          agentType: meta.agentType,
          attempt: progress.attempts,
          waitMs: slot.waitedMs,
        });
        const result = await this.attempt(meta, request, options, slot, deadline, callTimeoutMs, progress);
        if ('done' in result) {
          this.finish(meta.agentType, 'success', undefined, progress);
          return {
            ...result.done,
            waitMs: Math.round(progress.waitMs),
            processMs: Math.round(progress.processMs),
            attempts: progress.attempts,
          };
        }
        await sleep(this.clock, result.retryInMs, signal);
      }
    } catch (error) {
      let failure = toAppError(error);
      // When the chat's deadline is what ran out, say so: the whole chat is over, not one call.
      const chatBound = meta.chatDeadline !== undefined && deadline === meta.chatDeadline;
      if (chatBound && (failure.code === 'queue_timeout' || failure.code === 'llm_timeout')) {
        failure = new AppError('chat_timeout', undefined, { cause: failure });
      }
      this.finish(meta.agentType, outcomeOf(failure.code), failure.code, progress);
      throw failure;
    }
  }

  /** One provider call on an acquired slot; the slot is released exactly once, whatever happens. */
  private async attempt(
    meta: LlmCallMeta,
    request: CompletionRequest,
    options: LlmCallOptions,
    slot: Slot,
    deadline: number,
    callTimeoutMs: number,
    progress: { attempts: number; processMs: number; deltaSeen: boolean },
  ): Promise<AttemptResult> {
    const callSignal = options.signal;
    const controller = new AbortController();
    const onCallAbort = () => controller.abort(abortReason(callSignal));
    callSignal.addEventListener('abort', onCallAbort, { once: true });
    // The caller may have aborted between the slot grant and now: its 'abort' event is gone.
    if (callSignal.aborted) onCallAbort();
    const startedAt = this.clock.now();
    // Our deadline may leave this attempt only part of LLM_TIMEOUT (the rest went to queue wait or
    // an earlier attempt): then timing out is not a verdict on the provider, and the breaker must
    // not count it. Half of LLM_TIMEOUT of its own is a fair chance for the provider.
    const ownDeadline = deadline - startedAt < callTimeoutMs / 2;
    const timer = this.clock.setTimeout(
      () =>
        controller.abort(
          new AppError('llm_timeout', undefined, ownDeadline ? { details: { ownDeadline: true } } : {}),
        ),
      deadline - startedAt,
    );
    const latencyHandle = this.latency.started();
    let completedMs: number | undefined;
    let reachedBreaker = false;
    try {
      if (controller.signal.aborted) throw abortReason(controller.signal);
      reachedBreaker = true;
      const result = await this.breaker.execute(async () => {
        try {
          return await this.provider.complete(request, {
            signal: controller.signal,
            onDelta: (text) => {
              if (controller.signal.aborted) return;
              if (!progress.deltaSeen) this.latency.firstToken(this.clock.now() - startedAt);
              progress.deltaSeen = true;
              options.onDelta?.(text);
            },
          });
        } catch (error) {
          // The provider reports any abort as its AbortError; the breaker must see why: our
          // llm_timeout (the provider did not answer) counts against it, a caller's abort does not.
          throw controller.signal.aborted ? abortReason(controller.signal) : error;
        }
      }, slot.probeTicket);
      if (controller.signal.aborted) throw controller.signal.reason;
      const tookMs = this.clock.now() - startedAt;
      completedMs = tookMs;
      progress.processMs += tookMs;
      this.queue.stats.recordLatency(tookMs);
      slot.settle(result.usage.promptTokens + result.usage.completionTokens);
      return { done: result };
    } catch (error) {
      progress.processMs += this.clock.now() - startedAt;
      if (controller.signal.aborted) {
        const reason = abortReason(controller.signal);
        if (reason.code === 'llm_timeout') {
          this.counters.inFlightTimeouts++;
          this.emit({ type: 'timeout', agentType: meta.agentType, where: 'in_flight' });
        }
        throw reason;
      }
      if (error instanceof AppError) {
        if (error.code === 'llm_unavailable') this.counters.breakerRejections++;
        throw error;
      }
      if (!(error instanceof ProviderError)) throw error;
      return this.onProviderError(meta, error, deadline, progress);
    } finally {
      this.latency.ended(latencyHandle, completedMs);
      this.clock.clearTimeout(timer);
      callSignal.removeEventListener('abort', onCallAbort);
      // A probe that never reached the provider gave no verdict: let another call probe.
      if (!reachedBreaker && slot.probeTicket !== undefined) this.breaker.abandonProbe(slot.probeTicket);
      slot.release();
    }
  }

  private onProviderError(
    meta: LlmCallMeta,
    error: ProviderError,
    deadline: number,
    progress: { attempts: number; deltaSeen: boolean },
  ): AttemptResult {
    if (error.kind === 'rate_limited') this.onRateLimited(meta.agentType, error);
    // After the first delta the user has seen text: a retry would duplicate it, so the call fails.
    if (error.retryable && !progress.deltaSeen && progress.attempts < this.maxAttempts) {
      const delayMs = backoffDelay(progress.attempts, error.retryAfterMs, this.backoffPolicy);
      if (this.clock.now() + delayMs < deadline) {
        this.counters.retries++;
        this.emit({ type: 'retry', agentType: meta.agentType, attempt: progress.attempts, delayMs });
        return { retryInMs: delayMs };
      }
    }
    throw new AppError(providerFailureCode(error), undefined, {
      cause: error,
      retryAfterMs: error.retryAfterMs,
    });
  }

  /**
   * A 429 slows everyone down, not just its caller: AIMD lowers the limit it named (requests or
   * tokens), and the provider's Retry-After holds every start until then — remembered in the
   * limiter, so new chats wait behind it (or are refused, when it is longer than they can wait)
   * instead of each probing the provider again.
   */
  private onRateLimited(agentType: AgentName, error: ProviderError): void {
    this.counters.rateLimited++;
    this.lastRateLimitedAt = this.clock.now();
    const decreased = this.aimd.onRateLimited(rateLimitKind(error));
    this.emit({ type: 'rate_limited', agentType, decreased });
    if (decreased)
      this.options.logger?.warn({ limits: this.aimd.limits() }, 'Provider answered 429; limits reduced');
    this.limiter.holdStarts(error.retryAfterMs ?? DEFAULT_RATE_LIMIT_HOLD_MS).then(
      () => this.queue.wake(),
      (failure: unknown) =>
        this.options.logger?.warn({ error: String(failure) }, 'Could not record the provider hold'),
    );
  }

  private finish(
    agentType: AgentName,
    outcome: CallOutcome,
    code: string | undefined,
    progress: { waitMs: number; processMs: number },
  ): void {
    this.queue.recordOutcome(agentType, outcome, progress.processMs);
    this.emit({
      type: 'end',
      agentType,
      outcome,
      code,
      waitMs: Math.round(progress.waitMs),
      processMs: Math.round(progress.processMs),
    });
  }

  private emit(event: SchedulerEvent): void {
    try {
      this.options.metrics?.record(event);
    } catch (error) {
      // A broken metrics sink must never fail a user's call.
      this.options.logger?.warn({ error: String(error) }, 'Scheduler metrics sink threw');
    }
  }
}

function roundOrNull(value: number | undefined): number | null {
  return value === undefined ? null : Math.round(value);
}

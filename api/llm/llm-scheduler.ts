import type { Config } from '../../config';
import type { Clock } from '../clock';
import { AppError, abortReason, toAppError } from '../errors';
import { AdmissionControl } from './admission';
import { Aimd } from './aimd';
import { InMemoryLimiter, type Limiter } from './limiter';
import type {
  Admission,
  AdmissionRequest,
  LlmCallMeta,
  LlmCallOptions,
  LlmCallOutcome,
  LlmGateway,
} from './llm-gateway';
import {
  ProviderError,
  estimatePromptTokens,
  type CompletionRequest,
  type CompletionResult,
  type Provider,
} from './provider';
import { ProviderBreaker, type BreakerState } from './provider-breaker';
import { DEFAULT_AGING_STEP_MS, RequestQueue, type QueueItem, type Slot } from './request-queue';
import { AdmissionReservations } from './admission-reservations';
import type { CallOutcome } from './scheduler-stats';
import type { LlmSchedulerOptions, SchedulerStatus } from './llm-scheduler-options';
import { backoffDelay, sleep, type BackoffPolicy } from './backoff';
import { outcomeOf, providerFailureCode } from './call-errors';
import type { SchedulerCounters, SchedulerEvent } from './scheduler-events';

export type {
  SchedulerCounters,
  SchedulerEvent,
  SchedulerLogger,
  SchedulerMetrics,
} from './scheduler-events';
import type { AgentName } from '../agents/agent-name';

/**
 * The LlmGateway every agent calls: queue (priorities, fairness, limits) → circuit breaker →
 * provider, with the one retry loop of the system (DESIGN.md §6): retryable failures (429, 5xx,
 * network) are retried with exponential backoff and full jitter, never earlier than the provider's
 * Retry-After, only before the first streamed delta, and never past the call's deadline. Every retry
 * goes back through the queue, so it is counted against the limits like any start.
 */

export type { LlmSchedulerOptions, RetryOptions, SchedulerStatus } from './llm-scheduler-options';

type AttemptResult = { done: CompletionResult } | { retryInMs: number };

export class LlmScheduler implements LlmGateway {
  readonly queue: RequestQueue;
  private readonly clock: Clock;
  private readonly provider: Provider;
  private readonly llm: Config['llm'];
  private readonly aimd: Aimd;
  private readonly limiter: Limiter;
  private readonly breaker: ProviderBreaker;
  private readonly admission: AdmissionControl;
  private readonly random: () => number;
  private readonly maxAttempts: number;
  private readonly backoffPolicy: BackoffPolicy;
  private readonly reservations = new AdmissionReservations();
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
    const llm = options.config.llm;
    this.llm = llm;
    this.clock = options.clock;
    this.provider = options.provider;
    this.random = options.random ?? Math.random;
    this.maxAttempts = Math.max(1, options.retry?.maxAttempts ?? 4);
    this.backoffPolicy = {
      baseDelayMs: options.retry?.baseDelayMs ?? 500,
      maxDelayMs: options.retry?.maxDelayMs ?? 20_000,
      random: this.random,
    };
    this.aimd = new Aimd({
      ...options.aimd,
      clock: this.clock,
      maxConcurrent: llm.maxConcurrent,
      maxRpm: llm.maxRpm,
    });
    this.limiter = new InMemoryLimiter({
      clock: this.clock,
      maxConcurrent: llm.maxConcurrent,
      maxRpm: llm.maxRpm,
      maxTpm: llm.maxTpm,
      effectiveLimits: () => this.aimd.limits(),
      burstWindowMs: options.burstWindowMs,
      windowMarginMs: options.windowMarginMs,
    });
    this.admission = new AdmissionControl(options.admission);
    this.queue = new RequestQueue({
      clock: this.clock,
      limiter: this.limiter,
      queueMax: llm.queueMax,
      priorityOrder: llm.priorityOrder,
      agingStepMs: options.agingStepMs,
      shedRetryAfterMs: () => this.admission.shedRetryAfterMs(this.admissionInputs()),
      // The breaker decides before a permit is taken (closures: the breaker is built below).
      gate: { check: () => this.breaker.gate(), claimProbe: () => this.breaker.claimProbe() },
    });
    this.breaker = new ProviderBreaker({
      ...options.breaker,
      clock: this.clock,
      onStateChange: (state) => {
        this.emit({ type: 'breaker', state });
        this.options.logger?.warn({ state }, 'LLM provider circuit breaker changed state');
      },
      onGateChange: () => this.queue.wake(),
    });
  }

  admit(request: AdmissionRequest): Admission {
    try {
      this.admission.admit(this.admissionInputs(), request.expectedCalls);
    } catch (error) {
      this.counters.shed++;
      this.emit({ type: 'shed', reason: 'admission' });
      throw error;
    }
    return this.reservations.reserve(request.runId, request.expectedCalls);
  }

  async complete(
    meta: LlmCallMeta,
    request: CompletionRequest,
    options: LlmCallOptions,
  ): Promise<LlmCallOutcome> {
    // The caller's signal (the run's) cancels the call wherever it is: queued, in flight or
    // sleeping before a retry. There is no second cancellation path.
    if (options.signal.aborted) throw abortReason(options.signal);
    // From here the call is queued work; it no longer needs to be counted as a reservation. A call
    // admission reserved was already counted against the queue bound, so the bound does not shed it.
    const reserved = meta.runId !== undefined && this.reservations.consume(meta.runId);
    return this.run(meta, request, options, reserved);
  }

  breakerState(): BreakerState {
    return this.breaker.state;
  }

  status(): SchedulerStatus {
    return {
      ...this.queue.status(),
      breaker: this.breaker.state,
      counters: { ...this.counters, aimdDecreases: this.aimd.decreaseCount },
    };
  }

  items(): QueueItem[] {
    return this.queue.items();
  }

  pause(): void {
    this.queue.pause();
  }

  resume(): void {
    this.queue.resume();
  }

  clear(): number {
    return this.queue.clear();
  }

  /** Stops the breaker's resources; queued calls are left to the caller's shutdown path. */
  close(): void {
    this.breaker.shutdown();
  }

  private async run(
    meta: LlmCallMeta,
    request: CompletionRequest,
    options: LlmCallOptions,
    reserved: boolean,
  ): Promise<LlmCallOutcome> {
    const signal = options.signal;
    const firstEnqueuedAt = this.clock.now();
    const deadline = firstEnqueuedAt + (meta.timeoutMs ?? this.llm.timeoutMs);
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
              bypassBound: reserved || progress.attempts > 1,
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
        const result = await this.attempt(meta, request, options, signal, slot, deadline, progress);
        if ('done' in result) {
          this.finish(meta.agentType, 'success', undefined, progress);
          return {
            ...result.done,
            waitMs: progress.waitMs,
            processMs: progress.processMs,
            attempts: progress.attempts,
          };
        }
        await sleep(this.clock, result.retryInMs, signal);
      }
    } catch (error) {
      const failure = toAppError(error);
      this.finish(meta.agentType, outcomeOf(failure.code), failure.code, progress);
      throw failure;
    }
  }

  /** One provider call on an acquired slot; the slot is released exactly once, whatever happens. */
  private async attempt(
    meta: LlmCallMeta,
    request: CompletionRequest,
    options: LlmCallOptions,
    callSignal: AbortSignal,
    slot: Slot,
    deadline: number,
    progress: { attempts: number; processMs: number; deltaSeen: boolean },
  ): Promise<AttemptResult> {
    const controller = new AbortController();
    const onCallAbort = () => controller.abort(abortReason(callSignal));
    callSignal.addEventListener('abort', onCallAbort, { once: true });
    // The caller may have aborted between the slot grant and now: its 'abort' event is gone.
    if (callSignal.aborted) onCallAbort();
    const startedAt = this.clock.now();
    const timer = this.clock.setTimeout(
      () => controller.abort(new AppError('llm_timeout')),
      deadline - startedAt,
    );
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
    if (error.kind === 'rate_limited') {
      this.counters.rateLimited++;
      const decreased = this.aimd.onRateLimited();
      this.emit({ type: 'rate_limited', agentType: meta.agentType, decreased });
      if (decreased)
        this.options.logger?.warn({ limits: this.aimd.limits() }, 'Provider answered 429; limits reduced');
    }
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
      waitMs: progress.waitMs,
      processMs: progress.processMs,
    });
  }

  private admissionInputs() {
    return {
      queued: this.queue.queueLength,
      active: this.queue.activeCount,
      reserved: this.reservations.total,
      admittedChats: this.reservations.chats,
      callsPerChat: this.reservations.meanCallsPerChat(),
      chatTargetMs: this.llm.chatTargetMs,
      priorityAllowanceMs:
        (this.llm.priorityOrder.length - 1) * (this.options.agingStepMs ?? DEFAULT_AGING_STEP_MS),
      queueMax: this.llm.queueMax,
      paused: this.queue.isPaused,
      limits: this.limiter.snapshot().limits,
      measuredLatencyMs: this.queue.stats.latency.mean(5),
      timeoutMs: this.llm.timeoutMs,
    };
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

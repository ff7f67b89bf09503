import type { Clock } from '../clock';
import { abortReason } from '../errors';
import { AdmittedChats } from './admitted-chats';
import type { AimdPolicy } from './aimd';
import type { CallPath } from './call-path';
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
import type { CompletionRequest } from './provider';
import type { BreakerState, EndpointUnavailable, ProviderBreaker } from './provider-breaker';
import type { QueueItem, RequestQueue } from './request-queue';
import type { LlmSchedulerOptions, SchedulerStatus } from './llm-scheduler-options';
import type { SchedulerEvent, SchedulerEventStream } from './scheduler-events';
import { estimateStartWaitMs } from './routing/wait-estimate';

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
 * The LlmGateway every agent calls, as a facade: chats registered once the chat line admitted them
 * (api/llm/admission.ts decides), then each call down the call path (call-path.ts: retry → queue slot → 429 reaction → latency → breaker → timeout →
 * provider), plus the operator's controls and the status over the same parts.
 *
 * Its parts (queue, limiter, AIMD, breaker, latency estimate, call path, event stream)
 * are built by the composition root (create-llm-scheduler.ts) and handed in; it constructs none.
 */

/** A 429 within this long makes the provider count as rate-limiting (health: degraded). */
const RATE_LIMITED_RECENTLY_MS = 60_000;

export class LlmScheduler implements LlmGateway, RunHolds {
  readonly queue: RequestQueue;
  private readonly clock: Clock;
  private readonly llm: LlmSchedulerOptions['config']['llm'];
  private readonly aimd: AimdPolicy;
  private readonly limiter: Limiter;
  private readonly breaker: ProviderBreaker;
  private readonly latency: LatencyEstimator;
  private readonly callPath: CallPath;
  private readonly events: SchedulerEventStream;
  private readonly chats: AdmittedChats;
  private refusingWhilePaused = false;

  constructor(private readonly options: LlmSchedulerOptions) {
    const { parts } = options;
    this.llm = options.config.llm;
    this.clock = options.clock;
    this.queue = parts.queue;
    this.limiter = parts.limiter;
    this.aimd = parts.aimd;
    this.breaker = parts.breaker;
    this.latency = parts.latency;
    this.callPath = parts.callPath;
    this.events = parts.events;
    this.chats = new AdmittedChats();
  }

  /**
   * Registers a chat that admission (the chat line, api/llm/admission.ts) let in: its calls are
   * never shed by the queue bound. Never refuses.
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
    return this.callPath.run(meta, request, options, admitted);
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

  /**
   * Why the provider cannot be used, when it cannot: refusing every call until a person acts
   * (`unavailable`), or failing now (`recentFailure`: the last 5xx, dropped connection or hang
   * the breaker counted, until a call succeeds) — what health reports beside the breaker's state.
   */
  providerAvailability(): {
    unavailable?: EndpointUnavailable & { probeInMs: number };
    recentFailure?: { message: string; ageMs: number };
  } {
    const failure = this.breaker.recentFailure();
    return {
      unavailable: this.breaker.unavailable(),
      ...(failure
        ? { recentFailure: { message: failure.message, ageMs: this.clock.now() - failure.at } }
        : {}),
    };
  }

  /** True while the provider has answered 429 recently or asked every call to wait. */
  isRateLimited(): boolean {
    return this.callPath.rateLimitedWithin(RATE_LIMITED_RECENTLY_MS) || this.limiter.snapshot().heldUntil > 0;
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
      ...this.unavailableStatus(),
      counters: this.events.counters(this.aimd.decreaseCount),
    };
  }

  private unavailableStatus(): Pick<SchedulerStatus, 'unavailable'> {
    const unavailable = this.breaker.unavailable();
    if (!unavailable) return {};
    const { reason, providerCode, probeInMs } = unavailable;
    return { unavailable: { reason, providerCode, probeInMs: Math.round(probeInMs) } };
  }

  /** How long a call sent now would wait for its slot, ms (rough: routing/wait-estimate.ts). */
  startWaitEstimateMs(): number {
    return estimateStartWaitMs({
      now: this.clock.now(),
      waiting: this.queue.queueLength,
      limiter: this.limiter.snapshot(),
      latencyMs: this.latency.estimateMs(),
    });
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

  private emit(event: SchedulerEvent): void {
    this.events.emit(event);
  }
}

function roundOrNull(value: number | undefined): number | null {
  return value === undefined ? null : Math.round(value);
}

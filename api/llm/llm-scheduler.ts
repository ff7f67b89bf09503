import type { Clock } from '../clock';
import { AppError, abortReason } from '../errors';
import type { AdmissionControl, AdmissionInputs } from './admission';
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
import type { BreakerState, ProviderBreaker } from './provider-breaker';
import { DEFAULT_AGING_STEP_MS, type QueueItem, type RequestQueue } from './request-queue';
import type { LlmSchedulerOptions, SchedulerStatus } from './llm-scheduler-options';
import type { SchedulerEvent, SchedulerEventStream } from './scheduler-events';

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
 * The LlmGateway every agent calls, as a facade: admission before a chat, then each call down the
 * call path (call-path.ts: retry → queue slot → 429 reaction → latency → breaker → timeout →
 * provider), plus the operator's controls and the status over the same parts.
 *
 * Its parts (queue, limiter, AIMD, breaker, admission, latency estimate, call path, event stream)
 * are built by the composition root (create-llm-scheduler.ts) and handed in; it constructs none.
 */

/** How long a cold admission waits for the first measured call before deciding with what it has. */
const COLD_MEASURE_MAX_MS = 5_000;
/** A 429 within this long makes the provider count as rate-limiting (health: degraded). */
const RATE_LIMITED_RECENTLY_MS = 60_000;

export class LlmScheduler implements LlmGateway, RunHolds {
  readonly queue: RequestQueue;
  private readonly clock: Clock;
  private readonly llm: LlmSchedulerOptions['config']['llm'];
  private readonly aimd: AimdPolicy;
  private readonly limiter: Limiter;
  private readonly breaker: ProviderBreaker;
  private readonly admission: AdmissionControl;
  private readonly latency: LatencyEstimator;
  private readonly callPath: CallPath;
  private readonly events: SchedulerEventStream;
  private readonly chats: AdmittedChats;
  private refusingWhilePaused = false;
  /** Chats whose admission is being decided (they count as held while it is). */
  private deciding = 0;
  /**
   * admit() still bumps its own shed count here; the status reads every count from the event
   * stream (its 'shed' event included), so this one is not read. It goes when admission moves out.
   */
  private readonly counters = { shed: 0 };

  constructor(private readonly options: LlmSchedulerOptions) {
    const { parts } = options;
    this.llm = options.config.llm;
    this.clock = options.clock;
    this.queue = parts.queue;
    this.limiter = parts.limiter;
    this.aimd = parts.aimd;
    this.breaker = parts.breaker;
    this.admission = parts.admission;
    this.latency = parts.latency;
    this.callPath = parts.callPath;
    this.events = parts.events;
    this.chats = new AdmittedChats(this.clock);
  }

  async admit(request: AdmissionRequest, signal?: AbortSignal): Promise<Admission> {
    if (!this.llm.admission) return this.holdInCluster(this.chats.admit(request.runId, undefined));
    // While it is decided the chat already counts, here and (with REDIS_URL) for every instance:
    // two instances deciding at once each see the other's chat.
    this.deciding++;
    try {
      let total = await this.reportHeld();
      let decision = this.admission.decide(this.admissionInputs(request.expectedCalls, false, total));
      if (decision.action === 'measure') {
        // Cold: nothing measured yet. Wait for the first calls to complete (they are in flight:
        // the chats admitted on free slots made them), then decide on what they showed.
        await this.latency.firstSample(COLD_MEASURE_MAX_MS, signal);
        total = await this.reportHeld();
        decision = this.admission.decide(this.admissionInputs(request.expectedCalls, true, total));
      }
      // The slowdown is measured against the model alone (see AdmissionEstimate.modelChatMs).
      const modelMs = decision.action === 'admit' ? decision.estimate?.modelChatMs : undefined;
      this.deciding--;
      return this.holdInCluster(this.chats.admit(request.runId, modelMs));
    } catch (error) {
      this.deciding--;
      void this.reportHeld();
      if (error instanceof AppError && error.code === 'overloaded') {
        this.counters.shed++;
        this.emit({ type: 'shed', reason: 'admission' });
      }
      throw error;
    }
  }

  /** The admitted chat's end is also reported to the cluster's count. */
  private holdInCluster(admission: Admission): Admission {
    if (!this.options.clusterChats) return admission;
    return {
      release: (end) => {
        admission.release(end);
        void this.reportHeld();
      },
    };
  }

  /** Tells the cluster how many chats this instance holds; resolves the cluster's total, if known. */
  private reportHeld(): Promise<number | undefined> {
    return this.options.clusterChats?.report(this.chats.count + this.deciding) ?? Promise.resolve(undefined);
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

  /** The slowdown admission works with now (this instance's chats and the others' published ones). */
  slowdown(): number {
    return this.chats.slowdown(this.options.otherInstances?.othersSlowdownRatios?.());
  }

  /** This instance's recent actual / model chat times, for the other instances (the heartbeat). */
  slowdownRatios(): number[] {
    return this.chats.recentRatios();
  }

  breakerState(): BreakerState {
    return this.breaker.state;
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
      counters: this.events.counters(this.aimd.decreaseCount),
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

  clear(): number {
    return this.queue.clear();
  }

  /** Stops the breaker's and the limiter's resources; queued calls are left to the caller's shutdown path. */
  async close(): Promise<void> {
    this.breaker.shutdown();
    await this.limiter.close?.();
  }

  /** `clusterTotal`: the chats every instance holds, this one included (undefined: not shared, or unknown). */
  private admissionInputs(expectedCalls: number, measured = false, clusterTotal?: number): AdmissionInputs {
    const snapshot = this.limiter.snapshot();
    let latencyMs = this.latency.estimateMs();
    // After the cold wait, decide with what the calls in flight prove if none has completed yet.
    if (latencyMs === undefined && measured) latencyMs = Math.max(1, this.latency.oldestInFlightMs());
    return {
      // On its own share (Redis lost) an instance serves only its own chats; the others' frozen
      // heartbeat figures would count N instances' chats against 1/N of the quota.
      admittedChats: snapshot.instanceShare
        ? this.chats.count
        : clusterTotal !== undefined
          ? Math.max(0, clusterTotal - 1)
          : this.chats.count + (this.options.otherInstances?.othersAdmittedChats() ?? 0),
      callsPerChat: Math.max(1, expectedCalls, this.chats.meanCallsPerChat() ?? 0),
      limits: snapshot.limits,
      latencyMs,
      slowdown: this.slowdown(),
      callTimeoutMs: this.llm.timeoutMs,
      chatTimeoutMs: this.llm.chatTimeoutMs,
      chatTargetMs: this.llm.chatTargetMs,
      priorityAllowanceMs:
        (this.llm.priorityOrder.length - 1) * (this.options.agingStepMs ?? DEFAULT_AGING_STEP_MS),
      queueMax: this.llm.queueMax,
      refusing: this.queue.isPaused && this.refusingWhilePaused,
      providerHoldMs: this.providerHoldMs(),
    };
  }

  private emit(event: SchedulerEvent): void {
    this.events.emit(event);
  }
}

function roundOrNull(value: number | undefined): number | null {
  return value === undefined ? null : Math.round(value);
}

import { AppError } from '../errors';
import type { EffectiveLimits } from './aimd';

/**
 * Admission control before a chat starts (DESIGN.md §1, aim 2: spend quota only on work that will
 * finish): refuse only what cannot finish, at once, with 503 `overloaded`, Retry-After and the
 * estimated wait.
 *
 * The model: an admitted chat makes its k calls one after another, so it holds at most one call at a
 * time. The provider serves at most mu = min(RPM/60, C/L) calls/s (effective AIMD limits, L the
 * measured latency). N chats cycling through their calls each see a call take about
 * max(L, N/mu) (wait included), so a chat takes k·max(L, N/mu). A new chat is admitted while, with it,
 * - that chat time, scaled by the slowdown measured on finished chats (how much slower than their
 *   estimate real chats ran: priorities, tool rounds, jitter; 1 until enough have finished), stays
 *   within the chat target (LLM_CHAT_TARGET_MS; never below k·L: an idle server never refuses) and
 *   within the chat deadline (CHAT_TIMEOUT_MS);
 * - one call's wait plus its run fits the per-call deadline (LLM_TIMEOUT), less what higher classes
 *   may overtake under aging;
 * - admitted chats stay within the queue bound (each holds at most one queued call).
 * Nothing here is a guessed prior. Before any call has completed L is unknown: a chat that finds a
 * free concurrency slot (N + 1 ≤ C) within the rate limit cannot be slowed by the others and is
 * admitted; any other waits (`decide` answers 'measure') until the first calls complete.
 */
export interface AdmissionInputs {
  /** Chats admitted and not yet ended (the new one excluded). */
  admittedChats: number;
  /** Provider calls a chat makes: the expected count, or the measured mean when larger. */
  callsPerChat: number;
  limits: EffectiveLimits;
  /** Current provider latency estimate in ms, or undefined before any call completed. */
  latencyMs: number | undefined;
  /** Measured (actual / estimated) chat time, ≥ 1. */
  slowdown: number;
  /** Per-call deadline (queue wait + call). */
  callTimeoutMs: number;
  /** The whole chat's deadline; 0 = none. */
  chatTimeoutMs: number;
  /** Target completion time of a chat under load; 0 = no chat-level target. */
  chatTargetMs: number;
  /** How much later-arriving, higher-class work may overtake a call (aging step × lower ranks). */
  priorityAllowanceMs: number;
  /** Chats admitted at once, at most (LLM_QUEUE_MAX: each holds at most one queued call). */
  queueMax: number;
  /** An operator paused the queue and chose to refuse new chats meanwhile. */
  refusing?: boolean;
  /** A provider-wide Retry-After holds every start for this long. */
  providerHoldMs: number;
}

export interface AdmissionOptions {
  /** Share of the per-call deadline the estimate may use; the rest absorbs estimation error. */
  deadlineHeadroom?: number;
  /** Floor for Retry-After, so refused clients do not come straight back. */
  minRetryAfterMs?: number;
  /** Retry-After while an operator refuses new chats (how long an incident lasts is unknown). */
  pausedRetryAfterMs?: number;
}

export interface AdmissionEstimate {
  serviceRatePerSecond: number;
  latencyMs: number;
  /** Expected wait of one call, queue only. */
  estimatedWaitMs: number;
  /** Expected time for the whole chat, slowdown included. */
  estimatedChatMs: number;
  /**
   * The model's time for the chat before the measured slowdown (k·max(L, N/mu)): what a finished
   * chat is compared with to measure the slowdown. Compared with estimatedChatMs instead, each
   * measurement would be relative to the last one, and admission would swing between refusing and
   * over-admitting.
   */
  modelChatMs: number;
}

export type AdmissionDecision =
  | { action: 'admit'; estimate: AdmissionEstimate | undefined }
  /** Not enough is known yet (no call has completed): wait for the first measurements, then decide. */
  | { action: 'measure' };

export class AdmissionControl {
  private readonly headroom: number;
  readonly minRetryAfterMs: number;
  private readonly pausedRetryAfterMs: number;

  constructor(options: AdmissionOptions = {}) {
    this.headroom = options.deadlineHeadroom ?? 0.9;
    this.minRetryAfterMs = options.minRetryAfterMs ?? 1_000;
    this.pausedRetryAfterMs = options.pausedRetryAfterMs ?? 5_000;
  }

  estimate(inputs: AdmissionInputs, latencyMs: number): AdmissionEstimate {
    const latency = Math.max(1, latencyMs);
    const serviceRatePerSecond = Math.min(
      inputs.limits.rpm / 60,
      inputs.limits.concurrency / (latency / 1000),
    );
    const chats = inputs.admittedChats + 1;
    const cycleMs = Math.max(latency, (chats / serviceRatePerSecond) * 1000);
    return {
      serviceRatePerSecond,
      latencyMs: latency,
      estimatedWaitMs: Math.round(cycleMs - latency),
      estimatedChatMs: Math.round(inputs.callsPerChat * cycleMs * inputs.slowdown),
      modelChatMs: Math.round(inputs.callsPerChat * cycleMs),
    };
  }

  /**
   * Admits, asks to measure first, or throws AppError('overloaded') with retryAfterMs, the estimated
   * wait in the message and details.estimatedWaitMs.
   */
  decide(inputs: AdmissionInputs): AdmissionDecision {
    if (inputs.refusing) {
      throw new AppError('overloaded', 'An operator paused the LLM queue and is refusing new chats', {
        retryAfterMs: this.retryAfter(this.pausedRetryAfterMs),
        details: { paused: true },
      });
    }
    const chats = inputs.admittedChats + 1;
    if (chats > inputs.queueMax) {
      throw new AppError('overloaded', `The server is running ${inputs.admittedChats} chats, its limit`, {
        retryAfterMs: this.retryAfter(
          inputs.latencyMs === undefined
            ? 0
            : (inputs.callsPerChat * 1000) / this.estimate(inputs, inputs.latencyMs).serviceRatePerSecond,
        ),
      });
    }
    const deadlineMs = inputs.chatTimeoutMs || inputs.callTimeoutMs * inputs.callsPerChat;
    if (inputs.providerHoldMs > Math.min(deadlineMs, inputs.callTimeoutMs)) {
      throw new AppError('overloaded', 'The LLM provider asked us to wait before any new call', {
        retryAfterMs: this.retryAfter(inputs.providerHoldMs),
        details: { estimatedWaitMs: inputs.providerHoldMs },
      });
    }
    if (inputs.latencyMs === undefined) {
      // Known without L: the rate limit alone spaces the chats' calls at least this far apart.
      const rateBoundMs = (inputs.callsPerChat * chats * 60_000) / inputs.limits.rpm;
      const freeSlot = chats <= inputs.limits.concurrency;
      const targetMs = inputs.chatTargetMs || Infinity;
      return freeSlot && rateBoundMs <= targetMs
        ? { action: 'admit', estimate: undefined }
        : { action: 'measure' };
    }
    const estimate = this.estimate(inputs, inputs.latencyMs);
    const details = {
      estimatedWaitMs: estimate.estimatedWaitMs,
      estimatedChatMs: estimate.estimatedChatMs,
      admittedChats: inputs.admittedChats,
      serviceRatePerSecond: Number(estimate.serviceRatePerSecond.toFixed(3)),
    };
    // One admitted chat finishes every k/mu seconds: that is how soon there is room again.
    const perChatMs = (inputs.callsPerChat * 1000) / estimate.serviceRatePerSecond;
    const aloneMs = inputs.callsPerChat * estimate.latencyMs;

    const callBudgetMs =
      inputs.callTimeoutMs * this.headroom - Math.min(inputs.priorityAllowanceMs, inputs.callTimeoutMs / 2);
    const callNeedMs = (estimate.estimatedWaitMs + estimate.latencyMs) * inputs.slowdown;
    if (callNeedMs > Math.max(callBudgetMs, estimate.latencyMs)) {
      throw this.refusal(
        `The server cannot finish this chat's calls within LLM_TIMEOUT`,
        (callNeedMs - callBudgetMs) / inputs.slowdown + perChatMs,
        details,
      );
    }
    for (const [limitMs, name] of [
      [inputs.chatTimeoutMs * this.headroom, 'CHAT_TIMEOUT_MS'],
      [inputs.chatTargetMs, 'LLM_CHAT_TARGET_MS'],
    ] as const) {
      if (!limitMs) continue;
      const boundMs = Math.max(limitMs, aloneMs * inputs.slowdown);
      if (estimate.estimatedChatMs > boundMs) {
        // Chats beyond what fits finish one every k/mu: wait for that many to end.
        const excessChats = ((estimate.estimatedChatMs - boundMs) / estimate.estimatedChatMs) * chats;
        throw this.refusal(
          `The server is at capacity for chats that finish within ${Math.ceil(limitMs / 1000)} s (${name}; ` +
            `estimated ${Math.ceil(estimate.estimatedChatMs / 1000)} s)`,
          excessChats * perChatMs,
          {
            ...details,
            estimatedWaitMs: Math.max(details.estimatedWaitMs, estimate.estimatedChatMs - boundMs),
          },
        );
      }
    }
    return { action: 'admit', estimate };
  }

  private refusal(message: string, retryAfterMs: number, details: Record<string, unknown>): AppError {
    const wait = `(estimated wait ${Math.ceil(Number(details.estimatedWaitMs) / 1000)} s)`;
    return new AppError('overloaded', `${message} ${wait}`, {
      retryAfterMs: this.retryAfter(retryAfterMs),
      details,
    });
  }

  private retryAfter(ms: number): number {
    return Math.max(this.minRetryAfterMs, Math.ceil(ms));
  }
}

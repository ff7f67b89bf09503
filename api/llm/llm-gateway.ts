import type { PriorityClass } from './priority-class';
import type { CompletionRequest, CompletionResult } from './provider';

/**
 * What agents see of the LLM: one call, scheduled. The scheduler behind it sends each call down the
 * call path (call-path.ts): retries, the queue's priorities, fairness and quota limits, the
 * breaker and the timeout.
 */

export interface LlmCallMeta {
  agentType: PriorityClass;
  userId: string;
  conversationId: string;
  /** The run (one chat turn) this call belongs to; cancelling a run cancels its calls. */
  runId?: string;
  /** Queue wait + call, in ms; defaults to LLM_TIMEOUT. */
  timeoutMs?: number;
  /** The whole chat's deadline (clock time): no call of the chat waits or runs past it. */
  chatDeadline?: number;
  /**
   * Another endpoint of the call's route can take it (set by the routing gateway): a fallbackable
   * failure (routing/fallbackable.ts) ends this endpoint's attempts at once instead of retrying.
   */
  fallbackAvailable?: boolean;
  /**
   * The longest this call may wait for a slot (each attempt), ms; past it, queue_timeout. The
   * gateway's callers set it (GATEWAY_MAX_WAIT_MS) so that a low class's call is refused before
   * its age would carry it past the agents' calls.
   */
  maxWaitMs?: number;
  /**
   * The model (or endpoint name) a /v1 caller named, with an endpoints file: the call goes only to
   * the endpoints serving it (RoutingGateway.modelRoute), never to its class's route.
   */
  model?: string;
}

export interface LlmCallOptions {
  /** Aborting removes a queued call from the queue or aborts the in-flight HTTP request. */
  signal: AbortSignal;
  onDelta?: (text: string) => void;
  /** A thinking model's reasoning as it streams: shown apart, never part of the answer. */
  onReasoning?: (text: string) => void;
}

export interface LlmCallOutcome extends CompletionResult {
  /** Time spent queued (all attempts), ms. */
  waitMs: number;
  /** Time spent in provider calls (all attempts), ms. */
  processMs: number;
  attempts: number;
  /** Answered without a provider call (the response cache, or an identical call in flight). */
  cached?: boolean;
  /** The endpoint that answered (its name and model), when the routing gateway chose one. */
  endpoint?: { name: string; model: string };
}

export interface AdmissionRequest {
  userId: string;
  /** The run the chat executes as. */
  runId: string;
}

/** An admitted chat's registration with the scheduler; release it when the chat ends. Idempotent. */
export interface Admission {
  release(): void;
}

/**
 * Holds a run's calls out of dispatch while nobody listens to it (a client that left must stop
 * costing quota): its waiting calls stay queued but start only once a listener is back.
 */
export interface RunHolds {
  hold(runId: string): void;
  release(runId: string): void;
}

export interface LlmGateway {
  /** Runs one provider call through the scheduler. Rejects with an AppError (see api/errors.ts). */
  complete(meta: LlmCallMeta, request: CompletionRequest, options: LlmCallOptions): Promise<LlmCallOutcome>;
  /**
   * Registers a chat the chat line admitted (api/llm/admission.ts decides; this never refuses):
   * every call of an admitted chat is served, none is shed by the queue bound.
   */
  admit(request: AdmissionRequest): Promise<Admission>;
}

import type { AgentName } from '../agents/agent-name';
import type { CompletionRequest, CompletionResult } from './provider';

/**
 * What agents see of the LLM: one call, scheduled. The scheduler behind it (request-queue +
 * llm-scheduler) applies priorities, fairness, the quota limits, timeouts, retries and the breaker.
 */

export interface LlmCallMeta {
  agentType: AgentName;
  userId: string;
  conversationId: string;
  /** The run (one chat turn) this call belongs to; cancelling a run cancels its calls. */
  runId?: string;
  /** Queue wait + call, in ms; defaults to LLM_TIMEOUT. */
  timeoutMs?: number;
}

export interface LlmCallOptions {
  /** Aborting removes a queued call from the queue or aborts the in-flight HTTP request. */
  signal: AbortSignal;
  onDelta?: (text: string) => void;
}

export interface LlmCallOutcome extends CompletionResult {
  /** Time spent queued (all attempts), ms. */
  waitMs: number;
  /** Time spent in provider calls (all attempts), ms. */
  processMs: number;
  attempts: number;
  /** Answered without a provider call (the response cache, or an identical call in flight). */
  cached?: boolean;
}

export interface AdmissionRequest {
  userId: string;
  /** The run the chat executes as; its calls consume the reservation. */
  runId: string;
  /** Provider calls the chat is expected to make (4 for multi_agent, 1 for single, plus rounds). */
  expectedCalls: number;
}

/** An admitted chat's hold on capacity; release it when the chat ends (calls it never made). */
export interface Admission {
  release(): void;
}

export interface LlmGateway {
  /** Runs one provider call through the scheduler. Rejects with an AppError (see api/errors.ts). */
  complete(meta: LlmCallMeta, request: CompletionRequest, options: LlmCallOptions): Promise<LlmCallOutcome>;
  /**
   * Admission control before a chat starts: throws AppError('overloaded', …, {retryAfterMs}) when the
   * chat could not finish within its deadline given the work ahead and the measured service rate.
   * An admitted chat reserves its expected calls until they are enqueued or the admission is released.
   */
  admit(request: AdmissionRequest): Admission;
}

import type { LlmCallMeta } from '../llm-gateway';
import type { CompletionRequest, CompletionResult, Usage } from '../provider';

/** What every policy of one LLM call shares (call-path.ts composes them). */

/** What the call has done so far, over all its attempts. */
export interface CallProgress {
  attempts: number;
  /** Time spent queued, ms. */
  waitMs: number;
  /** Time spent in provider calls, ms. */
  processMs: number;
  /** When the current attempt started on the provider (clock time). */
  attemptStartedAt: number;
  /** A delta (or reasoning) reached the caller: the user has seen it, so the call is never retried. */
  deltaSeen: boolean;
  /** Set by the first-byte timeout for the attempt in flight; called at its first byte. */
  onFirstByte?: () => void;
  /** Reasoning pieces streamed, over all attempts (a thinking model's). */
  reasoningDeltas: number;
  /** The latest usage the provider reported during the current attempt (cumulative), if any. */
  attemptUsage?: Usage;
}

export interface CallContext {
  readonly meta: LlmCallMeta;
  readonly request: CompletionRequest;
  readonly onDelta?: (text: string) => void;
  readonly onReasoning?: (text: string) => void;
  /** Clock time by which the call must have finished, queue wait and every attempt included. */
  readonly deadline: number;
  /** The call's own timeout (its share of the deadline is judged against it). */
  readonly callTimeoutMs: number;
  /** When the call was first queued: a retry keeps its age in the queue. */
  readonly firstEnqueuedAt: number;
  /** The call's prompt plus its output allowance, reserved against TPM until settled. */
  readonly estimatedTokens: number;
  /** A call of an admitted chat: the queue bound never sheds it. */
  readonly admitted: boolean;
  readonly progress: CallProgress;
}

/** The rest of the path below a policy; `signal` aborts it. */
export type CallStep = (signal: AbortSignal) => Promise<CompletionResult>;

/**
 * One concern of the call path. A policy runs `next` (the policies inside it, then the provider)
 * zero or more times, with the signal it is given or a narrower one; it knows none of the others.
 */
export interface CallPolicy {
  execute(next: CallStep, signal: AbortSignal, call: CallContext): Promise<CompletionResult>;
}

/** Composes policies, outermost first (cockatiel's Policy.wrap). */
export function wrap(...policies: CallPolicy[]): CallPolicy {
  return {
    execute: (innermost, signal, call) => {
      const step = policies.reduceRight<CallStep>(
        (next, policy) => (inner) => policy.execute(next, inner, call),
        innermost,
      );
      return step(signal);
    },
  };
}

import type { AgentName } from '../agents/agent-name';
import type { Clock } from '../clock';
import type { AppError } from '../errors';
import type { Limiter } from './limiter';

/** The request queue's public types (request-queue.ts holds the behaviour). */

export interface RequestQueueOptions {
  clock: Clock;
  limiter: Limiter;
  /** Queued calls, at most (LLM_QUEUE_MAX). */
  queueMax: number;
  /** Highest priority first (LLM_PRIORITY_ORDER). */
  priorityOrder: readonly AgentName[];
  /** Waiting this long is worth one priority rank. */
  agingStepMs?: number;
  /** The window of the wait/process histograms. */
  statsWindowMs?: number;
  /** Retry-After for calls shed because the queue is full (the admission estimate supplies it). */
  shedRetryAfterMs?: () => number;
}

export interface AcquireRequest {
  agentType: AgentName;
  userId: string;
  conversationId: string;
  runId?: string;
  estimatedTokens: number;
  /** Absolute clock time by which the call must have finished (queue wait included). */
  deadline: number;
  /** For retries: when the call was first queued, so it keeps its age. */
  firstEnqueuedAt?: number;
  /** Retries of an admitted call are not shed by the queue bound. */
  bypassBound?: boolean;
}

/** A dispatched call's hold on the provider quota. */
export interface Slot {
  readonly id: number;
  readonly waitedMs: number;
  /**
   * Registers the in-flight call's cancel hook (cancelRun). A callback, not an AbortSignal: an
   * AbortController per dispatch costs more than the rest of a dispatch decision together.
   */
  onCancel(listener: (reason: AppError) => void): void;
  /** Returns the slot; only the first call has an effect. */
  release(): void;
  /** Corrects the TPM reservation with real usage. */
  settle(actualTokens: number): void;
}

export interface QueueItem {
  id: number;
  agentType: AgentName;
  userId: string;
  conversationId: string;
  runId?: string;
  state: 'queued' | 'active';
  waitedMs: number;
}

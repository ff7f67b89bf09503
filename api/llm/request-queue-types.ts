import type { PriorityClass } from './priority-class';
import type { Clock } from '../clock';
import type { AppError } from '../errors';
import type { Limiter } from './limiter';
import type { BreakerState } from './provider-breaker';
import type { ProviderRoom } from './provider-room';
import type { RunLedger } from './run-ledger';

/** The request queue's public types (request-queue.ts holds the behaviour). */

export interface RequestQueueOptions {
  clock: Clock;
  limiter: Limiter;
  /** Queued calls, at most (LLM_QUEUE_MAX). */
  queueMax: number;
  /** Highest priority first (LLM_PRIORITY_ORDER). */
  priorityOrder: readonly PriorityClass[];
  /** Waiting this long is worth one priority rank. */
  agingStepMs?: number;
  /** The window of the wait/process histograms. */
  statsWindowMs?: number;
  /** Retry-After for calls shed because the queue is full (the admission estimate supplies it). */
  shedRetryAfterMs?: () => number;
  /**
   * The provider's circuit breaker, read before each dispatch, before a permit is taken: a call that
   * cannot reach the provider must not spend a concurrency slot or an RPM start. Call `wake()` when
   * its state changes.
   */
  breaker?: BreakerReading;
  /**
   * The least time a call must have left before its deadline to be started (about one provider
   * call); a call with less is failed with queue_timeout instead of being started to time out.
   */
  minDispatchBudgetMs?: () => number;
  /**
   * How long a provider call takes, as measured (undefined until one completed): where RPM binds,
   * the room a running chat needs is a start each call time, and this sizes it (see reportRoom).
   */
  callTimeMs?: () => number | undefined;
  /** Told what waits, which slots are free and which runs hold calls: admission's closed loop. */
  room?: Pick<ProviderRoom, 'update' | 'callQueued' | 'callEnded'> & Partial<Pick<ProviderRoom, 'explain'>>;
  /**
   * Told when each run's calls wait, start and end (admission's late starts measure that), and
   * asked which runs are late: their calls go before every class (queue-lanes.ts).
   */
  ledger?: Pick<
    RunLedger,
    'callQueued' | 'callStarted' | 'callDropped' | 'callEnded' | 'lateDeadline' | 'callWaited'
  >;
  /** This queue's endpoint, as the ledger tells endpoints apart. */
  endpointName?: string;
  /** The limiter failed to answer (e.g. its store is unreachable); dispatch is retried shortly. */
  onLimiterError?: (error: unknown) => void;
}

/**
 * What the queue reads of the circuit breaker: `closed` dispatches as usual; `open` refuses new
 * calls and fails the queued ones with a fresh `openError()`; `half_open` dispatches one call at a
 * time (the breaker's probe), the others wait (their deadlines still run) until its slot is back.
 */
export interface BreakerReading {
  readonly state: BreakerState;
  openError(): AppError;
}

export interface AcquireRequest {
  agentType: PriorityClass;
  userId: string;
  conversationId: string;
  runId?: string;
  estimatedTokens: number;
  /** Absolute clock time by which the call must have finished (queue wait included). */
  deadline: number;
  /** For retries: when the call was first queued, so it keeps its age. */
  firstEnqueuedAt?: number;
  /** The longest this call may wait in the queue, ms (default: until its deadline). */
  maxWaitMs?: number;
  /** Retries, and calls an admitted chat reserved, are not shed by the queue bound. */
  bypassBound?: boolean;
}

/** A dispatched call's hold on the provider quota. */
export interface Slot {
  readonly id: number;
  readonly waitedMs: number;
  /** Returns the slot; only the first call has an effect. */
  release(): void;
  /** Corrects the TPM reservation with real usage. */
  settle(actualTokens: number): void;
}

export interface QueueItem {
  id: number;
  agentType: PriorityClass;
  userId: string;
  conversationId: string;
  runId?: string;
  state: 'queued' | 'active';
  waitedMs: number;
}

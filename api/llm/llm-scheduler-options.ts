import type { UnusableReason } from './provider';
import type { Config } from '../../config';
import type { Clock } from '../clock';
import type { AimdPolicy } from './aimd';
import type { CallPath } from './call-path';
import type { LatencyEstimator } from './latency-estimator';
import type { Limiter } from './limiter';
import type { BreakerState, ProviderBreaker } from './provider-breaker';
import type { QueueStatus } from './queue-status';
import type { RequestQueue } from './request-queue';
import type { SchedulerCounters, SchedulerEventStream } from './scheduler-events';

/** LlmScheduler's constructor options and status shape (llm-scheduler.ts holds the behaviour). */

export interface RetryOptions {
  /** Attempts in total, the first included. */
  maxAttempts?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
}

/** The parts the scheduler is a facade over, each built apart (create-llm-scheduler.ts). */
export interface LlmSchedulerParts {
  queue: RequestQueue;
  limiter: Limiter;
  aimd: AimdPolicy;
  breaker: ProviderBreaker;
  latency: LatencyEstimator;
  /** Every call after admission goes down it (call-path.ts). */
  callPath: CallPath;
  /** Where every part reports; the status's counters come from it. */
  events: SchedulerEventStream;
}

export interface LlmSchedulerOptions {
  config: Pick<Config, 'llm'>;
  clock: Clock;
  parts: LlmSchedulerParts;
}

export interface SchedulerStatus extends QueueStatus {
  /** An operator paused and chose to refuse new chats until resume. */
  refusingNewChats: boolean;
  /** Chats admitted and not yet ended. */
  admittedChats: number;
  /** Waiting calls held out of dispatch because their run has no listener. */
  parked: number;
  /** The measured provider latency (ms), null before any call completed. */
  latencyEstimateMs: number | null;
  firstTokenMs: number | null;
  /** How much longer a provider-wide Retry-After holds every start (ms; 0 = none). */
  providerHoldMs: number;
  /** The provider answered 429 within the last minute, or holds every start. */
  rateLimited: boolean;
  breaker: BreakerState;
  /**
   * Present while the provider refuses every call until a person acts (a used-up quota, a refused
   * key …): why, the provider's code, and when one call probes again.
   */
  unavailable?: { reason: UnusableReason; providerCode?: string; probeInMs: number };
  counters: SchedulerCounters;
}

import type { Config } from '../../config';
import type { Clock } from '../clock';
import type { AdmissionOptions } from './admission';
import type { AimdOptions } from './aimd';
import type { Provider } from './provider';
import type { BreakerState, ProviderBreakerOptions } from './provider-breaker';
import type { QueueStatus } from './queue-status';
import type { SchedulerCounters, SchedulerLogger, SchedulerMetrics } from './scheduler-events';

/** LlmScheduler's constructor options and status shape (llm-scheduler.ts holds the behaviour). */

export interface RetryOptions {
  /** Attempts in total, the first included. */
  maxAttempts?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
}

export interface LlmSchedulerOptions {
  config: Pick<Config, 'llm'>;
  provider: Provider;
  clock: Clock;
  logger?: SchedulerLogger;
  metrics?: SchedulerMetrics;
  /** Jitter source in [0, 1); inject for deterministic tests. */
  random?: () => number;
  retry?: RetryOptions;
  breaker?: Omit<ProviderBreakerOptions, 'clock' | 'onStateChange'>;
  aimd?: Omit<AimdOptions, 'clock' | 'maxConcurrent' | 'maxRpm'>;
  admission?: AdmissionOptions;
  agingStepMs?: number;
  /** Rate spreading sub-window (rate-window.ts); 0 = off. */
  burstWindowMs?: number;
  /** Safety margin added to the provider's 60 s windows (limiter.ts, InMemoryLimiterOptions). */
  windowMarginMs?: number;
}

export interface SchedulerStatus extends QueueStatus {
  breaker: BreakerState;
  counters: SchedulerCounters;
}

import type { Config } from '../../config';
import type { Clock } from '../clock';
import { Aimd, type AimdOptions, type AimdPolicy } from './aimd';
import { LatencyEstimator } from './latency-estimator';
import { InMemoryLimiter, type Limiter } from './limiter';
import { LlmScheduler } from './llm-scheduler';
import type { LlmSchedulerOptions } from './llm-scheduler-options';
import { ProviderBreaker, type ProviderBreakerOptions } from './provider-breaker';
import type { Provider } from './provider';
import { RequestQueue } from './request-queue';
import type { ProviderRoom } from './provider-room';
import type { SchedulerLogger, SchedulerMetrics } from './scheduler-events';

export interface CreateLlmSchedulerOptions {
  config: Pick<Config, 'llm'>;
  provider: Provider;
  clock: Clock;
  logger?: SchedulerLogger;
  metrics?: SchedulerMetrics;
  random?: () => number;
  retry?: LlmSchedulerOptions['retry'];
  breaker?: Omit<ProviderBreakerOptions, 'clock'>;
  aimd?: Omit<AimdOptions, 'clock' | 'maxConcurrent' | 'maxRpm' | 'maxTpm'>;
  agingStepMs?: number;
  /** Rate spreading sub-window (rate-window.ts); 0 = off. */
  burstWindowMs?: number;
  /** Safety margin added to the provider's 60 s windows (limiter.ts, InMemoryLimiterOptions). */
  windowMarginMs?: number;
  /**
   * The quota's store: given (e.g. the Redis adapter, shared by every instance), or the in-memory
   * limiter built here. With one given, `aimd` must be the policy that limiter enforces.
   */
  limiter?: { limiter: Limiter; aimd: AimdPolicy };
  /** Told what waits and what is free after every change in the queue (admission's closed loop). */
  room?: ProviderRoom;
}

/**
 * Builds the scheduler's policies apart — AIMD, limiter, breaker, latency estimate, the
 * request queue gated by the breaker — and composes them (cockatiel's style, STYLE.md): no policy
 * constructs another, and the scheduler constructs none.
 */
export function createLlmScheduler(options: CreateLlmSchedulerOptions): LlmScheduler {
  const { config, clock } = options;
  const llm = config.llm;
  const latency = new LatencyEstimator(clock);
  let shared = options.limiter;
  if (!shared) {
    const aimd = new Aimd({
      ...options.aimd,
      clock,
      maxConcurrent: llm.maxConcurrent,
      maxRpm: llm.maxRpm,
      maxTpm: llm.maxTpm,
    });
    const limiter = new InMemoryLimiter({
      clock,
      maxConcurrent: llm.maxConcurrent,
      maxRpm: llm.maxRpm,
      maxTpm: llm.maxTpm,
      aimd,
      burstWindowMs: options.burstWindowMs,
      windowMarginMs: options.windowMarginMs,
    });
    shared = { limiter, aimd };
  }
  const breaker = new ProviderBreaker({ ...options.breaker, clock });
  const queue = new RequestQueue({
    clock,
    limiter: shared.limiter,
    queueMax: llm.queueMax,
    priorityOrder: llm.priorityOrder,
    agingStepMs: options.agingStepMs,
    // Only calls outside admitted chats meet the bound (admitted chats' calls bypass it).
    shedRetryAfterMs: () => 1_000,
    room: options.room,
    gate: breaker,
    // About one provider call: a call with less time left would time out in flight.
    minDispatchBudgetMs: () => latency.estimateMs() ?? 0,
    onLimiterError: (error) =>
      options.logger?.warn({ error: String(error) }, 'The limiter did not answer; dispatch will retry'),
  });
  return new LlmScheduler({
    config,
    provider: options.provider,
    clock,
    logger: options.logger,
    metrics: options.metrics,
    random: options.random,
    retry: options.retry,
    parts: { queue, limiter: shared.limiter, aimd: shared.aimd, breaker, latency },
  });
}

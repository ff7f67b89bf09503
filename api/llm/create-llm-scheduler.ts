import type { Config } from '../../config';
import type { Clock } from '../clock';
import { Aimd, type AimdOptions, type AimdPolicy } from './aimd';
import { CallPath } from './call-path';
import { BreakerPolicy } from './policies/breaker-policy';
import { FirstByteTimeoutPolicy } from './policies/first-byte-timeout-policy';
import { LatencyPolicy } from './policies/latency-policy';
import { QueueSlotPolicy } from './policies/queue-slot-policy';
import { RateLimitReaction } from './policies/rate-limit-reaction';
import { RetryPolicy } from './policies/retry-policy';
import { TimeoutPolicy } from './policies/timeout-policy';
import { LatencyEstimator } from './latency-estimator';
import { InMemoryLimiter, type Limiter } from './limiter';
import { LlmScheduler } from './llm-scheduler';
import type { RetryOptions } from './llm-scheduler-options';
import { ProviderBreaker, type ProviderBreakerOptions } from './provider-breaker';
import type { Provider } from './provider';
import { RequestQueue } from './request-queue';
import type { ProviderRoom } from './provider-room';
import type { RunLedger } from './run-ledger';
import { SchedulerEventStream, type SchedulerLogger, type SchedulerMetrics } from './scheduler-events';

export interface CreateLlmSchedulerOptions {
  config: Pick<Config, 'llm'>;
  provider: Provider;
  clock: Clock;
  logger?: SchedulerLogger;
  metrics?: SchedulerMetrics;
  /** Jitter source in [0, 1); inject for deterministic tests. */
  random?: () => number;
  retry?: RetryOptions;
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
  /** Told what each run's calls do, and asked which runs are late (admission's late starts). */
  ledger?: RunLedger;
  /** The endpoint this scheduler serves, as the ledger tells endpoints apart. */
  endpointName?: string;
}

/**
 * Builds the scheduler's parts apart — AIMD, limiter, breaker, latency estimate, the
 * request queue that reads the breaker, the event stream, the call path — and hands them to the
 * scheduler, a facade over them: no policy constructs another, and the scheduler constructs none.
 */
export function createLlmScheduler(options: CreateLlmSchedulerOptions): LlmScheduler {
  const { config, clock, logger } = options;
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
  const breaker = new ProviderBreaker({
    unavailableCoolDownMs: llm.unavailableCoolDownMs,
    ...options.breaker,
    clock,
  });
  const queue = new RequestQueue({
    clock,
    limiter: shared.limiter,
    queueMax: llm.queueMax,
    priorityOrder: llm.priorityOrder,
    agingStepMs: options.agingStepMs,
    // Only calls outside admitted chats meet the bound (admitted chats' calls bypass it).
    shedRetryAfterMs: () => 1_000,
    room: options.room,
    ledger: options.ledger,
    endpointName: options.endpointName,
    breaker,
    // About one provider call: a call with less time left would time out in flight.
    minDispatchBudgetMs: () => latency.estimateMs() ?? 0,
    callTimeMs: () => latency.estimateMs(),
    onLimiterError: (error) =>
      logger?.warn({ error: String(error) }, 'The limiter did not answer; dispatch will retry'),
  });
  const events = new SchedulerEventStream({ tally: queue.stats, metrics: options.metrics, logger });
  const callPath = new CallPath({
    config,
    clock,
    provider: options.provider,
    events,
    policies: {
      retry: new RetryPolicy({
        clock,
        events,
        maxAttempts: Math.max(1, options.retry?.maxAttempts ?? 4),
        backoff: {
          baseDelayMs: options.retry?.baseDelayMs ?? 500,
          maxDelayMs: options.retry?.maxDelayMs ?? 20_000,
          random: options.random ?? Math.random,
        },
      }),
      queueSlot: new QueueSlotPolicy({ queue, events }),
      rateLimitReaction: new RateLimitReaction({ clock, aimd: shared.aimd, starts: queue, events, logger }),
      latency: new LatencyPolicy({ clock, latency, stats: queue.stats }),
      breaker: new BreakerPolicy({ breaker, events, logger }),
      // Only a provider that reports its first byte is timed on it (an HTTP endpoint).
      ...(options.provider.reportsFirstByte && llm.firstByteTimeoutMs > 0
        ? {
            firstByte: new FirstByteTimeoutPolicy({
              clock,
              coldMs: llm.firstByteTimeoutMs,
              floorMs: Math.min(llm.firstByteTimeoutFloorMs, llm.firstByteTimeoutMs),
              ceilingMs: Math.max(llm.firstByteTimeoutMs, llm.timeoutMs),
            }),
          }
        : {}),
      timeout: new TimeoutPolicy({ clock, events }),
    },
  });
  // After the call path's breaker policy has subscribed: a state change is reported, then acted on.
  breaker.addListener({ onStateChange: () => queue.wake() });
  return new LlmScheduler({
    config,
    clock,
    parts: {
      queue,
      limiter: shared.limiter,
      aimd: shared.aimd,
      breaker,
      latency,
      callPath,
      events,
    },
  });
}

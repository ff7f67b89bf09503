import type { SchedulerStatus } from '../llm-scheduler-options';
import type { BreakerState } from '../provider-breaker';

/** How many calls left, skipped or were served by an endpoint through fallback. */
export interface FallbackCounts {
  /** Calls that failed here before their first token and went on to the next endpoint. */
  left: number;
  /** Calls that passed this endpoint by (breaker open, or its wait longer than their time left). */
  skipped: number;
  /** Calls this endpoint answered after an earlier endpoint of their route failed or was skipped. */
  servedAsFallback: number;
}

/** One endpoint in `/api/queue/status` (`queue.endpoints`), the dashboard and the metrics. */
export interface EndpointStatus {
  name: string;
  provider: 'openai' | 'sim';
  model: string;
  /** The agents whose route names this endpoint, with its place (1 = first choice). */
  routes: Array<{ agent: string; position: number }>;
  breaker: BreakerState;
  queueLength: number;
  activeRequests: number;
  currentRPM: number;
  maxRPM: number;
  maxConcurrency: number;
  tokensLastMinute: number;
  maxTPM: number;
  effective: SchedulerStatus['effective'];
  utilizationRate: string;
  totalProcessed: number;
  totalSuccess: number;
  totalFailed: number;
  totalTimeout: number;
  /** 429s this endpoint answered. */
  rateLimited: number;
  averageWaitTime: number;
  p95WaitTime: number;
  averageProcessTime: number;
  latencyEstimateMs: number | null;
  providerHoldMs: number;
  /** How long a call sent here now would wait for its slot, ms (rough). */
  estimatedWaitMs: number;
  fallbacks: FallbackCounts;
}

export function endpointStatus(
  identity: Pick<EndpointStatus, 'name' | 'provider' | 'model' | 'routes'>,
  status: SchedulerStatus,
  estimatedWaitMs: number,
  fallbacks: FallbackCounts,
): EndpointStatus {
  return {
    ...identity,
    breaker: status.breaker,
    queueLength: status.queueLength,
    activeRequests: status.activeRequests,
    currentRPM: status.currentRPM,
    maxRPM: status.maxRPM,
    maxConcurrency: status.maxConcurrency,
    tokensLastMinute: status.tokensLastMinute,
    maxTPM: status.maxTPM,
    effective: status.effective,
    utilizationRate: status.utilizationRate,
    totalProcessed: status.totalProcessed,
    totalSuccess: status.totalSuccess,
    totalFailed: status.totalFailed,
    totalTimeout: status.totalTimeout,
    rateLimited: status.counters.rateLimited,
    averageWaitTime: status.averageWaitTime,
    p95WaitTime: status.p95WaitTime,
    averageProcessTime: status.averageProcessTime,
    latencyEstimateMs: status.latencyEstimateMs,
    providerHoldMs: status.providerHoldMs,
    estimatedWaitMs: Math.round(Math.min(estimatedWaitMs, 3_600_000)),
    fallbacks: { ...fallbacks },
  };
}

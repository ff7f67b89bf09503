/**
 * The alert conditions of deploy/prometheus/alert-rules.yml, evaluated inside Troupe for teams
 * without Prometheus (ALERT_WEBHOOK_URL). Same names, same thresholds, over the same 5-minute
 * window; `TroupeInstanceDown` cannot be seen from inside the instance that is down, so it stays
 * with Prometheus (`up == 0`) or an external check.
 */

/** What one evaluation reads; counters are cumulative since start. */
export interface AlertSample {
  rateLimited: number;
  queueLength: number;
  providerBreaker: string;
  /** Why the provider refuses every call until a person acts; undefined while it does not. */
  providerUnavailable?: string;
  openToolCircuits: string[];
  p95WaitMs: number;
  chatsEnded: number;
  chatsFailed: number;
  chatsCancelled: number;
  chatsRefused: number;
  /** undefined without REDIS_URL. */
  redisUp?: boolean;
  /** Endpoints (LLM_ENDPOINTS_FILE) whose breaker is open: their calls go to the next on the route. */
  openEndpoints?: string[];
  /** 429s answered by each endpoint, cumulative. */
  rateLimitedByEndpoint?: Record<string, number>;
}

export interface TimedSample {
  at: number;
  sample: AlertSample;
}

export type Severity = 'warning' | 'critical';

export interface AlertCondition {
  name: string;
  severity: Severity;
  /** A one-line summary while the condition holds, undefined when it does not. */
  check(now: TimedSample, windowStart: TimedSample, waitTargetMs: number): string | undefined;
}

export const ALERT_WINDOW_MS = 5 * 60_000;
/** deriv(troupe_llm_queue_length[5m]) > 0.1 and troupe_llm_queue_length > 10 */
const QUEUE_GROWTH_PER_S = 0.1;
const QUEUE_MIN_LENGTH = 10;
/** The brief's phase-2 target: under 1 % of chats fail. */
const ERROR_RATE = 0.01;

export const ALERT_CONDITIONS: AlertCondition[] = [
  {
    name: 'TroupeProvider429',
    severity: 'warning',
    check(now, start) {
      const count = now.sample.rateLimited - start.sample.rateLimited;
      if (count <= 0) return undefined;
      const byEndpoint = endpointDeltas(now.sample.rateLimitedByEndpoint, start.sample.rateLimitedByEndpoint);
      const where = byEndpoint.length > 1 ? ` (${byEndpoint.join(', ')})` : '';
      return `The LLM provider answered 429 ${count} times in the last ${minutes(now, start)}${where}: lower LLM_MAX_CONCURRENT / LLM_MAX_RPM (or the endpoint's maxConcurrent / maxRpm) to the real quota`;
    },
  },
  {
    name: 'TroupeQueueGrowing',
    severity: 'warning',
    check(now, start) {
      const seconds = (now.at - start.at) / 1000;
      if (seconds <= 0 || now.sample.queueLength <= QUEUE_MIN_LENGTH) return undefined;
      const growth = (now.sample.queueLength - start.sample.queueLength) / seconds;
      return growth > QUEUE_GROWTH_PER_S
        ? `The LLM queue grew from ${start.sample.queueLength} to ${now.sample.queueLength} calls in ${minutes(now, start)}`
        : undefined;
    },
  },
  {
    name: 'TroupeProviderBreakerOpen',
    severity: 'critical',
    check: (now) =>
      now.sample.providerBreaker === 'open'
        ? 'The LLM provider circuit breaker is open: chats fail fast'
        : undefined,
  },
  {
    name: 'TroupeProviderUnavailable',
    severity: 'critical',
    check: (now) =>
      now.sample.providerUnavailable
        ? `The LLM provider refuses every call (${now.sample.providerUnavailable}): chats end with provider_quota_exhausted until a person acts`
        : undefined,
  },
  {
    name: 'TroupeEndpointUnavailable',
    severity: 'warning',
    check: (now) =>
      now.sample.openEndpoints && now.sample.openEndpoints.length > 0 && now.sample.providerBreaker !== 'open'
        ? `LLM endpoint circuit open: ${now.sample.openEndpoints.join(', ')} (its calls fall back along their routes)`
        : undefined,
  },
  {
    name: 'TroupeToolBreakerOpen',
    severity: 'warning',
    check: (now) =>
      now.sample.openToolCircuits.length > 0
        ? `Tool circuit open: ${now.sample.openToolCircuits.join(', ')} (answers degrade)`
        : undefined,
  },
  {
    name: 'TroupeWaitP95OverTarget',
    severity: 'warning',
    check: (now, _start, targetMs) =>
      now.sample.p95WaitMs > targetMs
        ? `p95 LLM queue wait is ${now.sample.p95WaitMs} ms, over ALERT_WAIT_P95_MS=${targetMs}`
        : undefined,
  },
  {
    name: 'TroupeErrorRateHigh',
    severity: 'critical',
    check(now, start) {
      const delta = (field: keyof AlertSample) =>
        (now.sample[field] as number) - (start.sample[field] as number);
      const refused = delta('chatsRefused');
      const failed = delta('chatsFailed') + refused;
      const total = delta('chatsEnded') - delta('chatsCancelled') + refused;
      return total > 0 && failed / total > ERROR_RATE
        ? `${failed} of ${total} chats failed or were refused in the last ${minutes(now, start)} (${((failed / total) * 100).toFixed(1)} %, target < 1 %)`
        : undefined;
    },
  },
  {
    name: 'TroupeRedisDown',
    severity: 'critical',
    check: (now) =>
      now.sample.redisUp === false
        ? "Redis is unreachable: limits fall back to each instance's share"
        : undefined,
  },
];

/** `name: n` for each endpoint that answered 429 within the window. */
function endpointDeltas(now: Record<string, number> = {}, start: Record<string, number> = {}): string[] {
  return Object.entries(now)
    .map(([name, count]) => [name, count - (start[name] ?? 0)] as const)
    .filter(([, count]) => count > 0)
    .map(([name, count]) => `${name}: ${count}`);
}

function minutes(now: TimedSample, start: TimedSample): string {
  const value = Math.max(1, Math.round((now.at - start.at) / 60_000));
  return value === 1 ? 'minute' : `${value} minutes`;
}

import { ratioText } from '../metrics/percent-text';

/**
 * Per-tool counters behind `GET /api/tool-system/status`, `/api/health` and `/metrics`.
 * Totals are cumulative since start; the health status looks at a window of recent calls so an
 * old incident does not mark a tool degraded forever.
 */

export type ToolHealth = 'healthy' | 'degraded' | 'unavailable';
export type CircuitState = 'closed' | 'open' | 'half_open';

/** One row of `GET /api/tool-system/status`: the brief's shape, rates as `"60%"` (README, HTTP API). */
export interface ToolStatus {
  name: string;
  status: ToolHealth;
  circuit: CircuitState;
  totalCalls: number;
  successCalls: number;
  /** Share of calls answered from the cache, as the brief writes it: `"60%"`. */
  cacheHitRate: string;
  /** Mean latency of all calls, in ms. */
  averageLatency: number;
  /** Share of calls that failed or were answered by the fallback, `"2%"` (bad arguments and cancellations excluded). */
  errorRate: string;
}

export interface ToolSystemStatus {
  tools: ToolStatus[];
}

/** Raw counters for the Prometheus module. */
export interface ToolCounters {
  name: string;
  circuit: CircuitState;
  totalCalls: number;
  successCalls: number;
  cacheHits: number;
  degradedCalls: number;
  /** Failed calls by error code. */
  errors: Record<string, number>;
  latencySumMs: number;
}

export interface RecordedCall {
  ok: boolean;
  cached: boolean;
  degraded: boolean;
  latencyMs: number;
  errorCode?: string;
}

/** Failures that say nothing about the tool's health: the model's mistakes, the caller leaving. */
const NEUTRAL_ERRORS = new Set(['invalid_arguments', 'cancelled']);
const RECENT_WINDOW = 50;
const DEGRADED_ERROR_RATE = 0.2;
const MIN_RECENT_FOR_HEALTH = 5;

export class ToolMetrics {
  private totalCalls = 0;
  private successCalls = 0;
  private cacheHits = 0;
  private degradedCalls = 0;
  private failures = 0;
  private latencySumMs = 0;
  private readonly errors: Record<string, number> = {};
  /** Ring buffer of recent calls that count towards health: true = failed or degraded. */
  private readonly recent: boolean[] = [];
  private recentIndex = 0;

  constructor(readonly name: string) {}

  record(call: RecordedCall): void {
    this.totalCalls++;
    this.latencySumMs += call.latencyMs;
    if (call.cached) this.cacheHits++;
    if (call.ok && !call.degraded) this.successCalls++;
    if (call.degraded) this.degradedCalls++;
    if (!call.ok && call.errorCode) this.errors[call.errorCode] = (this.errors[call.errorCode] ?? 0) + 1;
    const neutral = !call.ok && NEUTRAL_ERRORS.has(call.errorCode ?? '');
    if (neutral) return;
    const bad = !call.ok || call.degraded;
    if (bad) this.failures++;
    if (this.recent.length < RECENT_WINDOW) this.recent.push(bad);
    else this.recent[this.recentIndex] = bad;
    this.recentIndex = (this.recentIndex + 1) % RECENT_WINDOW;
  }

  status(circuit: CircuitState, hasFallback: boolean): ToolStatus {
    const neutral = [...NEUTRAL_ERRORS].reduce((sum, code) => sum + (this.errors[code] ?? 0), 0);
    const counted = this.totalCalls - neutral;
    return {
      name: this.name,
      status: this.health(circuit, hasFallback),
      circuit,
      totalCalls: this.totalCalls,
      successCalls: this.successCalls,
      cacheHitRate: ratioText(this.cacheHits, this.totalCalls),
      averageLatency: this.totalCalls === 0 ? 0 : Math.round(this.latencySumMs / this.totalCalls),
      errorRate: ratioText(this.failures, counted),
    };
  }

  counters(circuit: CircuitState): ToolCounters {
    return {
      name: this.name,
      circuit,
      totalCalls: this.totalCalls,
      successCalls: this.successCalls,
      cacheHits: this.cacheHits,
      degradedCalls: this.degradedCalls,
      errors: { ...this.errors },
      latencySumMs: this.latencySumMs,
    };
  }

  private health(circuit: CircuitState, hasFallback: boolean): ToolHealth {
    if (circuit === 'open') return hasFallback ? 'degraded' : 'unavailable';
    if (circuit === 'half_open') return 'degraded';
    if (this.recent.length >= MIN_RECENT_FOR_HEALTH) {
      const bad = this.recent.filter(Boolean).length;
      if (bad / this.recent.length >= DEGRADED_ERROR_RATE) return 'degraded';
    }
    return 'healthy';
  }
}

/** The worst status among the tools: what `/api/health` reports as `services.tools`. */
export function overallHealth(statuses: ToolStatus[]): ToolHealth {
  if (statuses.some((tool) => tool.status === 'unavailable')) return 'unavailable';
  if (statuses.some((tool) => tool.status === 'degraded')) return 'degraded';
  return 'healthy';
}

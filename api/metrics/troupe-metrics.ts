import client from 'prom-client';
import type { SpeculationEvent, SpeculationMetrics } from '../agents/speculative-turn';
import type { LeaseFigures } from '../cluster/lease-figures';
import type { CacheEvent, CacheMetrics } from '../llm/cache/cache-stats';
import type { LlmControl } from '../llm/llm-control';
import type { SchedulerEvent, SchedulerMetrics } from '../llm/scheduler-events';
import type { RunRegistry } from '../streaming/run-registry';
import type { ToolExecutor } from '../tools/tool-executor';
import { LlmCacheMetrics } from './cache-metrics';
import { registerEndpointMetrics } from './endpoint-metrics';
import {
  registerChatOutcomes,
  registerRedisUpGauge,
  registerSseGauge,
  registerWaitTargetGauge,
} from './instance-gauges';
import { registerLeaseGauges } from './lease-gauges';
import { LlmCallMetrics } from './llm-call-metrics';
import { registerBreakerGauge, registerProviderAvailabilityGauge } from './provider-gauges';
import { registerLimitGauges, registerPausedGauge, registerQueueGauges } from './queue-gauges';
import { ToolMetrics } from './tool-metrics';

/**
 * Troupe's Prometheus metrics. One registry per server instance (tests run several in one
 * process); event-driven counters and histograms are fed by the scheduler and the tool executor,
 * gauges are read from their status at scrape time. Each area's series are registered by its own
 * module (queue, leases, endpoints, provider, tools, cache…), in the order /metrics lists them.
 */
export class TroupeMetrics implements SchedulerMetrics, CacheMetrics, SpeculationMetrics {
  readonly registry = new client.Registry();
  private readonly llmCalls: LlmCallMetrics;
  private readonly tools: ToolMetrics;
  private readonly cache: LlmCacheMetrics;
  private readonly speculativeDrafts: client.Counter<'event'>;
  private redisDispatchSeconds?: client.Histogram;

  constructor() {
    client.collectDefaultMetrics({ register: this.registry, prefix: 'troupe_process_' });
    // prom-client names three gauges `*_total`, which `promtool check metrics` rejects (that
    // suffix is for counters). Each has a by-type gauge beside it: sum() of that is the total.
    for (const name of ['active_handles_total', 'active_requests_total', 'active_resources_total']) {
      this.registry.removeSingleMetric(`troupe_process_nodejs_${name}`);
    }
    this.llmCalls = new LlmCallMetrics(this.registry);
    this.tools = new ToolMetrics(this.registry);
    this.cache = new LlmCacheMetrics(this.registry);
    this.speculativeDrafts = new client.Counter({
      name: 'troupe_agent_speculative_drafts_total',
      help: 'Reporter drafts written while the Critic reviewed (AGENT_PARALLEL), by what became of them',
      labelNames: ['event'],
      registers: [this.registry],
    });
  }

  /** The LLM response cache's events (CacheMetrics); the hit rate is hit+shared over all lookups. */
  recordCache(event: CacheEvent): void {
    this.cache.recordCache(event);
  }

  /** Speculative Reporter drafts (AGENT_PARALLEL): started, then used, withdrawn or failed. */
  recordSpeculation(event: SpeculationEvent): void {
    this.speculativeDrafts.inc({ event });
  }

  /** The scheduler's events (SchedulerMetrics). */
  record(event: SchedulerEvent): void {
    this.llmCalls.record(event);
  }

  /** Gauges read at scrape time from the live parts, and tool outcomes as they happen. */
  observe(parts: {
    scheduler: LlmControl;
    tools: ToolExecutor;
    sse?: () => { active: number; waiting: number };
    runs?: RunRegistry;
    /** true while Redis answers; absent when no REDIS_URL is set (then no series is exported). */
    redisUp?: () => boolean;
    /** The p95 queue wait the alert rules compare against (ALERT_WAIT_P95_MS). */
    waitTargetMs?: number;
    /** Leases held against calls running (REDIS_URL set; absent, no lease series is exported). */
    leases?: () => LeaseFigures;
  }): void {
    const { scheduler, tools } = parts;
    if (parts.runs) registerChatOutcomes(this.registry, parts.runs);
    if (parts.redisUp) registerRedisUpGauge(this.registry, parts.redisUp);
    if (parts.waitTargetMs !== undefined) registerWaitTargetGauge(this.registry, parts.waitTargetMs);
    registerQueueGauges(this.registry, scheduler);
    if (parts.leases) registerLeaseGauges(this.registry, parts.leases);
    registerLimitGauges(this.registry, scheduler);
    registerBreakerGauge(this.registry, scheduler);
    registerEndpointMetrics(this.registry, scheduler);
    registerProviderAvailabilityGauge(this.registry, scheduler);
    registerPausedGauge(this.registry, scheduler);
    if (parts.sse) registerSseGauge(this.registry, parts.sse);
    this.tools.observe(tools);
  }

  /** One ask's round trip to Redis (up to 16 starts; the shared limiter's dispatch path); registered on first use. */
  redisDispatch(ms: number): void {
    this.redisDispatchSeconds ??= new client.Histogram({
      name: 'troupe_llm_redis_dispatch_seconds',
      help: "An ask's round trip to the shared limiter in Redis (one Lua script granting up to 16 starts), as the dispatch path waits for it",
      buckets: [0.0002, 0.0005, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
      registers: [this.registry],
    });
    this.redisDispatchSeconds.observe(ms / 1000);
  }
}

import client from 'prom-client';
import type { SpeculationEvent, SpeculationMetrics } from '../agents/speculative-turn';
import type { LeaseFigures } from '../cluster/lease-figures';
import type { CacheEvent, CacheMetrics } from '../llm/cache/cache-stats';
import { WAIT_REASONS } from '../llm/wait-reasons';
import type { LlmControl } from '../llm/llm-control';
import type { SchedulerEvent, SchedulerMetrics } from '../llm/scheduler-events';
import type { RunRegistry } from '../streaming/run-registry';
import type { ToolExecutor } from '../tools/tool-executor';

const TIME_BUCKETS_SECONDS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120];

/**
 * Troupe's Prometheus metrics. One registry per server instance (tests run several in one
 * process); event-driven counters and histograms are fed by the scheduler and the tool executor,
 * gauges are read from their status at scrape time.
 */
export class TroupeMetrics implements SchedulerMetrics, CacheMetrics, SpeculationMetrics {
  readonly registry = new client.Registry();
  private readonly starts: client.Counter<'agent'>;
  private readonly outcomes: client.Counter<'agent' | 'outcome' | 'code'>;
  private readonly rateLimited: client.Counter<'agent'>;
  private readonly retries: client.Counter<'agent'>;
  private readonly timeouts: client.Counter<'agent' | 'where'>;
  private readonly shed: client.Counter<'reason'>;
  private readonly reasoningDeltas: client.Counter<'agent'>;
  private readonly firstByteTimeouts: client.Counter<'agent'>;
  private readonly providerRefusals: client.Counter<'reason'>;
  private readonly waitSeconds: client.Histogram<'agent'>;
  private readonly processSeconds: client.Histogram<'agent'>;
  private readonly toolCalls: client.Counter<'tool' | 'result' | 'cached'>;
  private readonly toolLatency: client.Histogram<'tool'>;
  private readonly cacheLookups: client.Counter<'result'>;
  private readonly cacheTokensSaved: client.Counter;
  private readonly cacheStored: client.Counter;
  private readonly cacheErrors: client.Counter<'operation'>;
  private readonly speculativeDrafts: client.Counter<'event'>;
  private redisDispatchSeconds?: client.Histogram;

  constructor() {
    client.collectDefaultMetrics({ register: this.registry, prefix: 'troupe_process_' });
    // prom-client names three gauges `*_total`, which `promtool check metrics` rejects (that
    // suffix is for counters). Each has a by-type gauge beside it: sum() of that is the total.
    for (const name of ['active_handles_total', 'active_requests_total', 'active_resources_total']) {
      this.registry.removeSingleMetric(`troupe_process_nodejs_${name}`);
    }
    const registers = [this.registry];
    this.starts = new client.Counter({
      name: 'troupe_llm_starts_total',
      help: 'Provider calls started (each retry attempt counts)',
      labelNames: ['agent'],
      registers,
    });
    this.outcomes = new client.Counter({
      name: 'troupe_llm_calls_total',
      help: 'Scheduled LLM calls finished, by outcome',
      labelNames: ['agent', 'outcome', 'code'],
      registers,
    });
    this.rateLimited = new client.Counter({
      name: 'troupe_llm_provider_429_total',
      help: 'Provider answers of 429 (rate limited)',
      labelNames: ['agent'],
      registers,
    });
    this.retries = new client.Counter({
      name: 'troupe_llm_retries_total',
      help: 'Provider call retries',
      labelNames: ['agent'],
      registers,
    });
    this.timeouts = new client.Counter({
      name: 'troupe_llm_timeouts_total',
      help: 'LLM calls that ran out of time, in the queue or in flight',
      labelNames: ['agent', 'where'],
      registers,
    });
    this.shed = new client.Counter({
      name: 'troupe_llm_shed_total',
      help: 'Chats or calls refused early (admission control, queue bound)',
      labelNames: ['reason'],
      registers,
    });
    this.reasoningDeltas = new client.Counter({
      name: 'troupe_llm_reasoning_deltas_total',
      help: 'Reasoning pieces a thinking model streamed (the `reasoning` event), never part of the answer',
      labelNames: ['agent'],
      registers,
    });
    this.firstByteTimeouts = new client.Counter({
      name: 'troupe_llm_first_byte_timeouts_total',
      help: 'Provider calls that got no byte within the first-byte timeout (a hanging provider)',
      labelNames: ['agent'],
      registers,
    });
    this.providerRefusals = new client.Counter({
      name: 'troupe_llm_provider_refusals_total',
      help: 'Provider refusals only a person can end (quota used up, spending limit, overdue bill, key, model)',
      labelNames: ['reason'],
      registers,
    });
    this.waitSeconds = new client.Histogram({
      name: 'troupe_llm_wait_seconds',
      help: 'Time LLM calls waited in the queue',
      labelNames: ['agent'],
      buckets: TIME_BUCKETS_SECONDS,
      registers,
    });
    this.processSeconds = new client.Histogram({
      name: 'troupe_llm_process_seconds',
      help: 'Time LLM calls spent with the provider',
      labelNames: ['agent'],
      buckets: TIME_BUCKETS_SECONDS,
      registers,
    });
    this.toolCalls = new client.Counter({
      name: 'troupe_tool_calls_total',
      help: 'Tool calls, by result (ok or error code) and cache use',
      labelNames: ['tool', 'result', 'cached'],
      registers,
    });
    this.toolLatency = new client.Histogram({
      name: 'troupe_tool_latency_seconds',
      help: 'Tool call latency',
      labelNames: ['tool'],
      buckets: TIME_BUCKETS_SECONDS,
      registers,
    });
    this.cacheLookups = new client.Counter({
      name: 'troupe_llm_cache_lookups_total',
      help: 'LLM calls by cache result: hit (from the cache), shared (joined an identical call in flight), miss (provider call)',
      labelNames: ['result'],
      registers,
    });
    this.cacheTokensSaved = new client.Counter({
      name: 'troupe_llm_cache_tokens_saved_total',
      help: 'Prompt + completion tokens of answers served without a provider call',
      registers,
    });
    this.cacheStored = new client.Counter({
      name: 'troupe_llm_cache_stored_total',
      help: 'Answers written to the LLM response cache',
      registers,
    });
    this.cacheErrors = new client.Counter({
      name: 'troupe_llm_cache_errors_total',
      help: 'LLM response cache reads or writes that failed (served as misses)',
      labelNames: ['operation'],
      registers,
    });
    this.speculativeDrafts = new client.Counter({
      name: 'troupe_agent_speculative_drafts_total',
      help: 'Reporter drafts written while the Critic reviewed (AGENT_PARALLEL), by what became of them',
      labelNames: ['event'],
      registers,
    });
  }

  /** The LLM response cache's events (CacheMetrics); the hit rate is hit+shared over all lookups. */
  recordCache(event: CacheEvent): void {
    switch (event.type) {
      case 'lookup':
        this.cacheLookups.inc({ result: event.result });
        if (event.tokensSaved > 0) this.cacheTokensSaved.inc(event.tokensSaved);
        break;
      case 'stored':
        this.cacheStored.inc();
        break;
      case 'error':
        this.cacheErrors.inc({ operation: event.operation });
        break;
    }
  }

  /** Speculative Reporter drafts (AGENT_PARALLEL): started, then used, withdrawn or failed. */
  recordSpeculation(event: SpeculationEvent): void {
    this.speculativeDrafts.inc({ event });
  }

  /** The scheduler's events (SchedulerMetrics). */
  record(event: SchedulerEvent): void {
    switch (event.type) {
      case 'start':
        this.starts.inc({ agent: event.agentType });
        this.waitSeconds.observe({ agent: event.agentType }, event.waitMs / 1000);
        break;
      case 'end':
        this.outcomes.inc({ agent: event.agentType, outcome: event.outcome, code: event.code ?? '' });
        if (event.outcome !== 'cancelled')
          this.processSeconds.observe({ agent: event.agentType }, event.processMs / 1000);
        break;
      case 'rate_limited':
        this.rateLimited.inc({ agent: event.agentType });
        break;
      case 'retry':
        this.retries.inc({ agent: event.agentType });
        break;
      case 'timeout':
        this.timeouts.inc({ agent: event.agentType, where: event.where });
        break;
      case 'shed':
        this.shed.inc({ reason: event.reason });
        break;
      case 'reasoning':
        this.reasoningDeltas.inc({ agent: event.agentType }, event.deltas);
        break;
      case 'first_byte_timeout':
        this.firstByteTimeouts.inc({ agent: event.agentType });
        break;
      case 'provider_refused':
        this.providerRefusals.inc({ reason: event.reason });
        break;
      case 'breaker':
        break;
    }
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
    const registers = [this.registry];
    const { scheduler, tools } = parts;
    if (parts.runs) {
      // The brief's error rate is of chats, not of LLM calls: each started chat ends once, here.
      const chats = new client.Counter({
        name: 'troupe_chats_total',
        help: 'Chats that ended, by outcome: done, or the error code (cancelled = the client left)',
        labelNames: ['outcome'],
        registers,
      });
      parts.runs.onFinished((_run, terminal) => {
        chats.inc({ outcome: terminal.event === 'error' ? terminal.data.code : 'done' });
      });
    }
    if (parts.redisUp) {
      const redisUp = parts.redisUp;
      new client.Gauge({
        name: 'troupe_redis_up',
        help: '1 while the Redis at REDIS_URL is connected, 0 when it is not',
        registers,
        collect() {
          this.set(redisUp() ? 1 : 0);
        },
      });
    }
    if (parts.waitTargetMs !== undefined) {
      new client.Gauge({
        name: 'troupe_llm_wait_target_seconds',
        help: 'The p95 queue wait over which an alert fires (ALERT_WAIT_P95_MS)',
        registers,
      }).set(parts.waitTargetMs / 1000);
    }
    new client.Gauge({
      name: 'troupe_llm_queue_length',
      help: 'LLM calls waiting in the queue',
      registers,
      collect() {
        this.set(scheduler.status().queueLength);
      },
    });
    new client.Gauge({
      name: 'troupe_llm_in_flight',
      help: 'LLM calls in flight with the provider',
      registers,
      collect() {
        this.set(scheduler.status().activeRequests);
      },
    });
    new client.Gauge({
      name: 'troupe_llm_calls_running',
      help: "This instance's LLM calls in flight at the provider (troupe_llm_in_flight is the shared quota's count)",
      registers,
      collect() {
        this.set(scheduler.activeCount());
      },
    });
    if (parts.leases) this.observeLeases(parts.leases);
    new client.Gauge({
      name: 'troupe_llm_effective_limit',
      help: 'Effective (AIMD) limits: concurrency and requests per minute',
      labelNames: ['limit'],
      registers,
      collect() {
        const effective = scheduler.status().effective;
        this.set({ limit: 'concurrency' }, effective.maxConcurrency);
        this.set({ limit: 'rpm' }, effective.maxRPM);
      },
    });
    new client.Gauge({
      name: 'troupe_llm_current_rpm',
      help: 'Provider calls started in the last 60 s',
      registers,
      collect() {
        this.set(scheduler.status().currentRPM);
      },
    });
    new client.Gauge({
      name: 'troupe_llm_waiting_calls',
      help: 'LLM calls waiting for a slot, by what holds them now (queue.waitReasons.now)',
      labelNames: ['reason'],
      registers,
      collect() {
        const { now, waitingCalls } = scheduler.status().waitReasons;
        for (const reason of WAIT_REASONS) this.set({ reason }, reason === now ? waitingCalls : 0);
      },
    });
    new client.Gauge({
      name: 'troupe_llm_wait_last_minute_seconds',
      help: 'Call-seconds waited in the last minute, by what held the calls (queue.waitReasons.lastMinute)',
      labelNames: ['reason'],
      registers,
      collect() {
        const { byReason } = scheduler.status().waitReasons.lastMinute;
        for (const reason of WAIT_REASONS) this.set({ reason }, byReason[reason] / 1000);
      },
    });
    new client.Gauge({
      name: 'troupe_llm_breaker_open',
      help: '1 while the provider circuit breaker is open, 0.5 half-open, 0 closed',
      registers,
      collect() {
        const state = scheduler.breakerState();
        this.set(state === 'open' ? 1 : state === 'half_open' ? 0.5 : 0);
      },
    });
    // Each provider endpoint apart (LLM_ENDPOINTS_FILE; one `default` without it).
    new client.Gauge({
      name: 'troupe_llm_endpoint_breaker_open',
      help: "1 while an endpoint's circuit breaker is open, 0.5 half-open, 0 closed",
      labelNames: ['endpoint'],
      registers,
      collect() {
        for (const endpoint of scheduler.endpoints()) {
          const state = endpoint.breaker;
          this.set({ endpoint: endpoint.name }, state === 'open' ? 1 : state === 'half_open' ? 0.5 : 0);
        }
      },
    });
    new client.Gauge({
      name: 'troupe_llm_endpoint_calls',
      help: "An endpoint's LLM calls: waiting in its queue, in flight, started in the last 60 s",
      labelNames: ['endpoint', 'state'],
      registers,
      collect() {
        for (const endpoint of scheduler.endpoints()) {
          this.set({ endpoint: endpoint.name, state: 'queued' }, endpoint.queueLength);
          this.set({ endpoint: endpoint.name, state: 'in_flight' }, endpoint.activeRequests);
          this.set({ endpoint: endpoint.name, state: 'started_last_minute' }, endpoint.currentRPM);
        }
      },
    });
    new client.Gauge({
      name: 'troupe_llm_endpoint_limit',
      help: "An endpoint's configured quota: concurrency, requests and tokens per minute (0 = none)",
      labelNames: ['endpoint', 'limit'],
      registers,
      collect() {
        for (const endpoint of scheduler.endpoints()) {
          this.set({ endpoint: endpoint.name, limit: 'concurrency' }, endpoint.maxConcurrency);
          this.set({ endpoint: endpoint.name, limit: 'rpm' }, endpoint.maxRPM);
          this.set({ endpoint: endpoint.name, limit: 'tpm' }, endpoint.maxTPM);
        }
      },
    });
    new client.Counter({
      name: 'troupe_llm_endpoint_outcomes_total',
      help: "An endpoint's LLM calls by outcome, and its 429 answers",
      labelNames: ['endpoint', 'outcome'],
      registers,
      collect() {
        this.reset();
        for (const endpoint of scheduler.endpoints()) {
          this.inc({ endpoint: endpoint.name, outcome: 'success' }, endpoint.totalSuccess);
          this.inc({ endpoint: endpoint.name, outcome: 'failed' }, endpoint.totalFailed);
          this.inc({ endpoint: endpoint.name, outcome: 'timeout' }, endpoint.totalTimeout);
          this.inc({ endpoint: endpoint.name, outcome: 'rate_limited' }, endpoint.rateLimited);
        }
      },
    });
    new client.Counter({
      name: 'troupe_llm_endpoint_fallbacks_total',
      help: 'Calls that left an endpoint (failed before the first token), passed it by, or were served by it as a fallback',
      labelNames: ['endpoint', 'event'],
      registers,
      collect() {
        this.reset();
        for (const endpoint of scheduler.endpoints()) {
          this.inc({ endpoint: endpoint.name, event: 'left' }, endpoint.fallbacks.left);
          this.inc({ endpoint: endpoint.name, event: 'skipped' }, endpoint.fallbacks.skipped);
          this.inc({ endpoint: endpoint.name, event: 'served' }, endpoint.fallbacks.servedAsFallback);
        }
      },
    });
    new client.Gauge({
      name: 'troupe_llm_provider_unavailable',
      help: '1 while the provider refuses every call until a person acts, labelled with why (else 0, reason none)',
      labelNames: ['reason'],
      registers,
      collect() {
        const unavailable = scheduler.providerAvailability().unavailable;
        this.reset();
        this.set({ reason: unavailable?.reason ?? 'none' }, unavailable ? 1 : 0);
      },
    });
    new client.Gauge({
      name: 'troupe_llm_paused',
      help: '1 while an operator has paused the queue',
      registers,
      collect() {
        this.set(scheduler.status().paused ? 1 : 0);
      },
    });
    if (parts.sse) {
      const sse = parts.sse;
      new client.Gauge({
        name: 'troupe_sse_streams',
        help: 'SSE runs streaming (active) and waiting for a slot',
        labelNames: ['state'],
        registers,
        collect() {
          const status = sse();
          this.set({ state: 'active' }, status.active);
          this.set({ state: 'waiting' }, status.waiting);
        },
      });
    }
    new client.Gauge({
      name: 'troupe_tool_circuit_open',
      help: '1 while a tool circuit is open, 0.5 half-open, 0 closed',
      labelNames: ['tool'],
      registers,
      collect() {
        for (const tool of tools.status().tools) {
          this.set({ tool: tool.name }, tool.circuit === 'open' ? 1 : tool.circuit === 'half_open' ? 0.5 : 0);
        }
      },
    });
    tools.onOutcome((outcome) => {
      this.toolCalls.inc({
        tool: outcome.tool,
        result: outcome.ok ? 'ok' : (outcome.errorCode ?? 'error'),
        cached: String(outcome.cached),
      });
      this.toolLatency.observe({ tool: outcome.tool }, outcome.latencyMs / 1000);
    });
  }

  /** One start's round trip to Redis (the shared limiter's dispatch path); registered on first use. */
  redisDispatch(ms: number): void {
    this.redisDispatchSeconds ??= new client.Histogram({
      name: 'troupe_llm_redis_dispatch_seconds',
      help: "A start's round trip to the shared limiter in Redis (one Lua script), as the dispatch path waits for it",
      buckets: [0.0002, 0.0005, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
      registers: [this.registry],
    });
    this.redisDispatchSeconds.observe(ms / 1000);
  }

  /**
   * The shared quota's leases against the calls they stand for (api/cluster/lease-figures.ts): per
   * instance, and the cluster's count in Redis as this instance last heard it (every instance exports
   * the same figure: take max()). The alert TroupeLeasesDisagree compares it with the sum of
   * troupe_llm_calls_running.
   */
  private observeLeases(leases: () => LeaseFigures): void {
    const registers = [this.registry];
    new client.Gauge({
      name: 'troupe_llm_leases_held',
      help: 'Concurrency leases this instance holds and renews in Redis (its calls the shared limiter granted)',
      registers,
      collect() {
        this.set(leases().instance.held);
      },
    });
    new client.Gauge({
      name: 'troupe_llm_leases_unreleased',
      help: 'Leases this instance is removing from Redis and Redis has not yet confirmed (lost releases, lost start answers)',
      registers,
      collect() {
        this.set(leases().instance.unreleased);
      },
    });
    new client.Gauge({
      name: 'troupe_llm_cluster_leases',
      help: 'Concurrency leases in Redis for the whole cluster, as this instance last heard',
      registers,
      collect() {
        this.set(leases().cluster.inRedis);
      },
    });
    new client.Gauge({
      name: 'troupe_llm_cluster_calls_running',
      help: "Every instance's LLM calls in flight at the provider, as last published (this one's live)",
      registers,
      collect() {
        this.set(leases().cluster.callsRunning);
      },
    });
  }
}

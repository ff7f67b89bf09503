import { AGENT_NAMES, type AgentName } from '../agents/agent-name';
import type { LlmControl } from '../llm/llm-control';
import type { SseStreaming } from '../streaming/sse-streaming';
import type { ToolExecutor } from '../tools/tool-executor';

/** One instance's row in the dashboard's instances table. */
export interface InstanceSummary {
  id: string;
  status: 'running' | 'paused';
  startedAt: number;
  uptimeSeconds: number;
  queueLength: number;
  inFlight: number;
  sseActive: number;
}

/**
 * What `/dashboard` shows, once a second. Cumulative counters (429s, retries, refusals) stay
 * cumulative: the page charts their per-second change, so a missed snapshot loses nothing.
 * `instances` lists this process only until the scale-out work fills it from Redis; `cache` is
 * null until the LLM response cache reports a hit rate (the page shows "n/a").
 */
export interface DashboardSnapshot {
  timestamp: number;
  instances: InstanceSummary[];
  queue: { length: number; byAgent: Record<AgentName, number>; paused: boolean; max: number };
  inFlight: { active: number; limit: number; configured: number };
  rpm: { current: number; limit: number; configured: number };
  /** `limit` 0 = no TPM limit set. */
  tpm: { current: number; limit: number };
  waitP95Ms: { overall: number; byAgent: Record<AgentName, number> };
  provider: { breaker: string; rateLimited: number; retries: number; breakerRejections: number };
  admission: { refused: number };
  sse: { active: number; max: number; waiting: number; refused: number };
  tools: Array<{ name: string; status: string; circuit: string; cacheHitRate: string; errorRate: string }>;
  cache: { hitRate: string } | null;
  /** Each provider endpoint (LLM_ENDPOINTS_FILE; one `default` without it). */
  endpoints: Array<{
    name: string;
    model: string;
    breaker: string;
    queued: number;
    inFlight: number;
    maxConcurrency: number;
    rpm: number;
    maxRPM: number;
    rateLimited: number;
    fallbacksLeft: number;
    fallbacksServed: number;
  }>;
}

export class DashboardSnapshots {
  private readonly startedAt = Date.now();

  constructor(
    private readonly deps: {
      scheduler: LlmControl;
      tools: ToolExecutor;
      sse: SseStreaming;
      queueMax: number;
      instanceId: string;
    },
  ) {}

  take(): DashboardSnapshot {
    const status = this.deps.scheduler.status();
    const sse = this.deps.sse.status();
    const byAgent = {} as Record<AgentName, number>;
    const waitByAgent = {} as Record<AgentName, number>;
    for (const agent of AGENT_NAMES) {
      byAgent[agent] = status.byAgent[agent].queued;
      waitByAgent[agent] = status.byAgent[agent].p95WaitTime;
    }
    // The LLM response cache lands with its own issue; read its hit rate when the status has one.
    const cache = (status as { cache?: { hitRate?: string } }).cache;
    const now = Date.now();
    return {
      timestamp: now,
      instances: [
        {
          id: this.deps.instanceId,
          status: status.paused ? 'paused' : 'running',
          startedAt: this.startedAt,
          uptimeSeconds: Math.round((now - this.startedAt) / 1000),
          queueLength: status.queueLength,
          inFlight: status.activeRequests,
          sseActive: sse.active,
        },
      ],
      queue: { length: status.queueLength, byAgent, paused: status.paused, max: this.deps.queueMax },
      inFlight: {
        active: status.activeRequests,
        limit: status.effective.maxConcurrency,
        configured: status.maxConcurrency,
      },
      rpm: { current: status.currentRPM, limit: status.effective.maxRPM, configured: status.maxRPM },
      tpm: { current: status.tokensLastMinute, limit: status.maxTPM },
      waitP95Ms: { overall: status.p95WaitTime, byAgent: waitByAgent },
      provider: {
        breaker: status.breaker,
        rateLimited: status.counters.rateLimited,
        retries: status.counters.retries,
        breakerRejections: status.counters.breakerRejections,
      },
      // Refused after joining the line (measured unable to start in time) or at the queue bound; the
      // line's 503s on arrival are sse.refused.
      admission: { refused: status.counters.shed + sse.refusedWaiting },
      sse: { active: sse.active, max: sse.max, waiting: sse.waiting, refused: sse.refused },
      tools: this.deps.tools.status().tools.map((tool) => ({
        name: tool.name,
        status: tool.status,
        circuit: tool.circuit,
        cacheHitRate: tool.cacheHitRate,
        errorRate: tool.errorRate,
      })),
      cache: cache?.hitRate ? { hitRate: cache.hitRate } : null,
      endpoints: this.deps.scheduler.endpoints().map((endpoint) => ({
        name: endpoint.name,
        model: endpoint.model,
        breaker: endpoint.breaker,
        queued: endpoint.queueLength,
        inFlight: endpoint.activeRequests,
        maxConcurrency: endpoint.maxConcurrency,
        rpm: endpoint.currentRPM,
        maxRPM: endpoint.maxRPM,
        rateLimited: endpoint.rateLimited,
        fallbacksLeft: endpoint.fallbacks.left,
        fallbacksServed: endpoint.fallbacks.servedAsFallback,
      })),
    };
  }
}

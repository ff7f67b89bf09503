import type { InstanceFigures } from '../cluster/instance-registry';
import type { QueueStatusBody } from '../routes/queue';
import type { SseLimiterStats } from '../streaming/line-stats';
import type { ToolSystemStatus } from '../tools/tool-metrics';

/**
 * What `/dashboard` shows, once a second: the bodies of the status endpoints themselves, so every
 * tile reads the field the API reports under the API's own name (`queueStatus.queue.cache.cacheHitRate`
 * is `GET /api/queue/status`'s `.queue.cache.cacheHitRate`). Nothing is renamed or derived here: a
 * figure the page shows can be checked against the endpoint with the same path. Cumulative
 * counters stay cumulative; the page charts their per-second change.
 */
export interface DashboardSnapshot {
  timestamp: number;
  /** GET /api/queue/status, as that endpoint would answer now. */
  queueStatus: QueueStatusBody;
  /** GET /api/sse/status. */
  sseStatus: SseLimiterStats & { openStreams: number };
  /** GET /api/tool-system/status. */
  toolSystemStatus: ToolSystemStatus & { timestamp: number };
  /**
   * Every instance, sorted by id: `queueStatus.instances` when instances share state (REDIS_URL),
   * so whichever instance answers lists them all; otherwise this one alone, with the same fields.
   */
  instances: InstanceFigures[];
  /** The instance that took this snapshot (`instance.id` in GET /api/queue/status). */
  answeredBy: string;
  /** LLM_QUEUE_MAX: the bound the queue tile shows beside the queue length. */
  queueMax: number;
}

/** The endpoints' body builders, each the one its route answers with (built in the composition root). */
export interface DashboardSources {
  queueStatus(): QueueStatusBody;
  sseStatus(): DashboardSnapshot['sseStatus'];
  toolSystemStatus(): DashboardSnapshot['toolSystemStatus'];
  /** This instance as the registry would publish it (used when there is no registry). */
  self: { id: string; pid: number; host: string };
  queueMax: number;
}

export class DashboardSnapshots {
  private readonly startedAt = new Date().toISOString();

  constructor(private readonly sources: DashboardSources) {}

  take(): DashboardSnapshot {
    const queueStatus = this.sources.queueStatus();
    const instances = queueStatus.instances
      ? [...queueStatus.instances].sort((a, b) => a.id.localeCompare(b.id))
      : [this.describeSelf(queueStatus)];
    return {
      timestamp: Date.now(),
      queueStatus,
      sseStatus: this.sources.sseStatus(),
      toolSystemStatus: this.sources.toolSystemStatus(),
      instances,
      answeredBy: queueStatus.instance?.id ?? this.sources.self.id,
      queueMax: this.sources.queueMax,
    };
  }

  /** A single instance's row, in the fields a registry publishes (cluster/instance-registry.ts). */
  private describeSelf(body: QueueStatusBody): InstanceFigures {
    const { queue } = body;
    return {
      ...this.sources.self,
      startedAt: this.startedAt,
      updatedAt: new Date(body.timestamp).toISOString(),
      queueLength: queue.queueLength,
      activeRequests: queue.activeRequests,
      admittedChats: queue.admittedChats,
      paused: queue.paused,
      totalProcessed: queue.totalProcessed,
      totalSuccess: queue.totalSuccess,
      totalFailed: queue.totalFailed,
      totalTimeout: queue.totalTimeout,
      limiter: 'local',
    };
  }
}

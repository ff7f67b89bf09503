import { Router } from 'express';
import type { Config } from '../../config';
import type { ChatService } from '../agents/chat-service';
import type { CacheStatus } from '../llm/cache/cache-stats';
import type { ControlCommand } from '../cluster/cluster-control';
import { clusterQueueStatus } from '../cluster/cluster-status';
import type { InstanceFigures } from '../cluster/instance-registry';
import type { LeaseFigures } from '../cluster/lease-figures';
import type { LlmControl } from '../llm/llm-control';
import type { EndpointStatus } from '../llm/routing/endpoint-status';
import type { SchedulerStatus } from '../llm/llm-scheduler';
import type { QueueItem } from '../llm/request-queue';
import { isAdmin, requireAdmin } from './auth';
import type { Pseudonyms } from './pseudonyms';

/** The other instances (REDIS_URL): their figures, and the channel operator commands go out on. */
export interface QueueCluster {
  self(): InstanceFigures;
  instances(): InstanceFigures[];
  /** Sends the command to every other instance; resolves how many heard it. */
  broadcast(command: ControlCommand): Promise<number>;
  /** Leases held against calls running, here and over the cluster (shown as `queue.leases`). */
  leases?(): LeaseFigures;
  /**
   * false: the instances do not share the limits (`--workers N` without REDIS_URL), so `queue`
   * stays this instance's own and only the instance list covers them all. Default true.
   */
  sharedLimits?: boolean;
}

/**
 * The brief's queue monitoring and emergency controls: status and items for everyone watching;
 * pause, resume and clear only with ADMIN_TOKEN.
 */
export function queueRouter(deps: {
  scheduler: LlmControl;
  config: Config;
  chat: Pick<ChatService, 'announcePause'>;
  /** The chat line: chats waiting to start are cleared with the queued calls. */
  line: { clearWaiting(): number };
  pseudonyms: Pseudonyms;
  /** The LLM response cache's figures, shown as `queue.cache`. */
  cache?: () => CacheStatus;
  cluster?: QueueCluster;
}): Router {
  const router = Router();
  const { scheduler, cluster } = deps;
  const admin = requireAdmin(deps.config);

  router.get('/queue/status', (_req, res) => {
    res.json(queueStatusBody(deps));
  });

  /** Tells the other instances; the answer says whether Redis carried it (this one acted anyway). */
  const broadcast = async (command: ControlCommand) => {
    if (!cluster) return undefined;
    try {
      return { delivered: true, instancesReached: await cluster.broadcast(command) };
    } catch (error) {
      return { delivered: false, error: `Redis did not carry the command: ${(error as Error).message}` };
    }
  };

  // The run id is the capability to read a chat, and user and conversation ids are personal: only
  // the operator (ADMIN_TOKEN) sees them; everyone else sees pseudonyms and no run id.
  router.get('/queue/items', (req, res) => {
    const admin = isAdmin(req, deps.config);
    const items = scheduler.items();
    res.json({
      timestamp: new Date().toISOString(),
      count: items.length,
      redacted: !admin,
      items: admin ? items : items.map((item) => publicItem(item, deps.pseudonyms)),
    });
  });

  // Pause holds work: nothing dispatches, chats keep arriving into the bounded queue and continue on
  // resume. Refusing new chats meanwhile is a separate choice: {"refuseNewChats": true} (or ?refuse=1).
  router.post('/queue/pause', admin, async (req, res) => {
    const body = (req.body ?? {}) as { refuseNewChats?: unknown };
    const refuseNewChats =
      body.refuseNewChats === true || req.query.refuse === '1' || req.query.refuse === 'true';
    scheduler.pause({ refuseNewChats });
    deps.chat.announcePause();
    const clusterReply = await broadcast({ command: 'pause', refuseNewChats });
    req.log?.warn({ refuseNewChats }, 'LLM queue paused by an operator');
    res.json({
      status: 'paused',
      refuseNewChats,
      timestamp: new Date().toISOString(),
      queueLength: scheduler.status().queueLength,
      ...(clusterReply ? { cluster: clusterReply } : {}),
    });
  });

  router.post('/queue/resume', admin, async (req, res) => {
    scheduler.resume();
    const clusterReply = await broadcast({ command: 'resume' });
    req.log?.warn('LLM queue resumed by an operator');
    res.json({
      status: 'running',
      timestamp: new Date().toISOString(),
      queueLength: scheduler.status().queueLength,
      ...(clusterReply ? { cluster: clusterReply } : {}),
    });
  });

  router.delete('/queue/clear', admin, async (req, res) => {
    // Queued calls and the chats still waiting to start alike: both end with queue_cleared.
    const cleared = scheduler.clear() + deps.line.clearWaiting();
    const clusterReply = await broadcast({ command: 'clear' });
    req.log?.warn({ cleared }, 'LLM queue cleared by an operator');
    res.json({
      status: scheduler.status().paused ? 'paused' : 'running',
      timestamp: new Date().toISOString(),
      cleared,
      ...(clusterReply ? { cluster: clusterReply } : {}),
    });
  });

  return router;
}

/** GET /api/queue/status's body; the dashboard's snapshot embeds the same object. */
export function queueStatusBody(deps: {
  scheduler: Pick<LlmControl, 'status' | 'endpoints'>;
  cache?: () => CacheStatus;
  cluster?: Pick<QueueCluster, 'self' | 'instances' | 'sharedLimits' | 'leases'>;
}): QueueStatusBody {
  const { cluster } = deps;
  const local = deps.scheduler.status();
  // Each provider endpoint apart (LLM_ENDPOINTS_FILE); the figures beside them are their sum.
  const cache = { ...(deps.cache ? { cache: deps.cache() } : {}), endpoints: deps.scheduler.endpoints() };
  // Epoch ms, as the brief's example: `watch … | jq` scripts subtract timestamps.
  if (!cluster) {
    const queue = { ...local, ...cache };
    return { status: queue.paused ? 'paused' : 'running', timestamp: Date.now(), queue };
  }
  const self = cluster.self();
  const others = cluster.instances().filter((instance) => instance.id !== self.id);
  if (cluster.sharedLimits === false) {
    const queue = { ...local, ...cache, instanceCount: others.length + 1 };
    return {
      status: queue.paused ? 'paused' : 'running',
      timestamp: Date.now(),
      queue,
      instance: self,
      instances: [...others, self],
    };
  }
  const view = clusterQueueStatus(local, [...others, self], self);
  return {
    status: view.queue.paused ? 'paused' : 'running',
    timestamp: Date.now(),
    ...view,
    queue: { ...view.queue, ...cache, ...(cluster.leases ? { leases: cluster.leases() } : {}) },
  };
}

/** GET /api/queue/status: `instanceCount`, `instance` and `instances` only with REDIS_URL. */
export interface QueueStatusBody {
  status: 'paused' | 'running';
  timestamp: number;
  queue: SchedulerStatus & {
    cache?: CacheStatus;
    endpoints?: EndpointStatus[];
    instanceCount?: number;
    leases?: LeaseFigures;
  };
  instance?: InstanceFigures;
  instances?: InstanceFigures[];
}

function publicItem(item: QueueItem, pseudonyms: Pseudonyms): Omit<QueueItem, 'runId'> {
  return {
    id: item.id,
    agentType: item.agentType,
    userId: pseudonyms.of('user', item.userId),
    conversationId: pseudonyms.of('conversation', item.conversationId),
    state: item.state,
    waitedMs: item.waitedMs,
  };
}

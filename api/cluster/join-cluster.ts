import type { ChatService } from '../agents/chat-service';
import type { Logger } from '../logger';
import type { LlmControl } from '../llm/llm-control';
import type { SseLimiter } from '../streaming/sse-limiter';
import type { ControlCommand } from './cluster-control';
import type { Cluster } from './create-cluster';
import type { LiveFigures } from './instance-registry';
import type { WorkerPeers } from './worker-peers';
import type { QueueCluster } from '../routes/queue';

function leaseCounts(cluster: Cluster): { leasesHeld: number; leasesUnreleased: number } {
  const { held, unreleased } = cluster.limiter.leaseCounts();
  return { leasesHeld: held, leasesUnreleased: unreleased };
}

/** This instance's parts that operator commands from other instances act on, and that report its figures. */
export interface ClusterMember {
  scheduler: LlmControl;
  chat: Pick<ChatService, 'announcePause'>;
  /** The chat line: a `clear` ends its waiting chats too. */
  line: Pick<SseLimiter, 'clearWaiting'>;
  logger: Logger;
}

/**
 * Starts this instance's part in the cluster (REDIS_URL): it applies the operator commands other
 * instances broadcast (pause, resume, clear) to its own scheduler and chat line, and publishes its
 * live figures for GET /api/queue/status. Wiring only, called by the composition root (troupe.ts)
 * once the scheduler and the chat line exist.
 */
export async function joinCluster(cluster: Cluster, member: ClusterMember): Promise<void> {
  await cluster.start({
    apply: (command) => applyOperatorCommand(member, command),
    figures: () => ({ ...memberFigures(member.scheduler, cluster.limiter.mode), ...leaseCounts(cluster) }),
  });
}

/** Applies an operator command another instance (or worker) received. */
export function applyOperatorCommand(member: ClusterMember, command: ControlCommand): void {
  const { scheduler: local, chat, line, logger } = member;
  logger.warn({ command }, 'Operator command from another instance');
  if (command.command === 'pause') {
    local.pause({ refuseNewChats: command.refuseNewChats });
    chat.announcePause();
  } else if (command.command === 'resume') local.resume();
  else {
    local.clear();
    line.clearWaiting();
  }
}

/** This instance's figures as it publishes them; `limiter` is its limiter's mode. */
export function memberFigures(local: LlmControl, limiter: string): LiveFigures {
  const status = local.status();
  return {
    queueLength: status.queueLength,
    activeRequests: local.activeCount(),
    admittedChats: status.admittedChats,
    paused: status.paused,
    totalProcessed: status.totalProcessed,
    totalSuccess: status.totalSuccess,
    totalFailed: status.totalFailed,
    totalTimeout: status.totalTimeout,
    limiter,
  };
}

/**
 * How GET /api/queue/status and the dashboard see the other instances: through Redis (REDIS_URL),
 * through the primary of `--workers N` without it (figures relayed, limits not shared), or not at
 * all (one process).
 */
export function queueClusterView(cluster?: Cluster, workerPeers?: WorkerPeers): QueueCluster | undefined {
  if (cluster) {
    return {
      self: () => cluster.registry.self(),
      instances: () => cluster.registry.instances(),
      broadcast: (command: ControlCommand) => cluster.control.publish(command),
      leases: () => cluster.leases(),
    };
  }
  if (workerPeers) {
    return {
      self: () => workerPeers.self(),
      instances: () => workerPeers.instances(),
      broadcast: (command: ControlCommand) => workerPeers.broadcast(command),
      sharedLimits: false,
    };
  }
  return undefined;
}

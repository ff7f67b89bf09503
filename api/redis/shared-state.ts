import { once } from 'node:events';
import type { Redis } from 'ioredis';
import type { Config } from '../../config';
import type { InstanceRegistry } from '../cluster/instance-registry';
import type { Clock } from '../clock';
import type { Logger } from '../logger';
import { duplicateConnection } from './redis-connection';

/** How long start waits for the run log's connection before going on without it (it keeps reconnecting). */
const CONNECT_WAIT_MS = 3000;
/**
 * The run event log's writes wait longer than other commands: a lost event is a gap in every
 * resume of its run, while a late one costs nothing (on a starved CPU, 1 s timers fire before
 * replies that did arrive are read).
 */
const RUN_LOG_COMMAND_TIMEOUT_MS = 10_000;

/** Who is alive, as the run event log and the tool limits ask it (the cluster's instance registry). */
export type InstancePresence = Pick<InstanceRegistry, 'instanceId' | 'instanceCount' | 'isAlive'>;

/** What the instances share when REDIS_URL is set: the connection, this instance's id, who is alive. */
export interface SharedState {
  /** The commands connection (the cluster's: one per process). */
  client: Redis;
  /** The run event log's own connection (its writes are ordered and never time out early). */
  runLogClient: Redis;
  keyPrefix: string;
  instanceId: string;
  presence: InstancePresence;
  /** Closes what this adds (the run log's connection); the cluster closes the commands connection. */
  close(): Promise<void>;
}

/**
 * The run events, tool limits and caches' view of the cluster (REDIS_URL): the cluster's commands
 * connection and registry, and the run log's own connection. A Redis that is down at start is not
 * fatal: the instance starts on its local fallbacks, and shares again once Redis answers.
 */
export async function connectSharedState(
  config: Pick<Config, 'redisUrl' | 'redisKeyPrefix'>,
  deps: {
    clock: Clock;
    logger: Logger;
    /** The cluster this instance joined: its connection, id and registry. */
    cluster?: { redis: Redis; instanceId: string; registry: InstancePresence };
  },
): Promise<SharedState | undefined> {
  if (!config.redisUrl || !deps.cluster) return undefined;
  const { redis: client, instanceId, registry } = deps.cluster;
  const runLogClient = duplicateConnection(client, deps.logger, {
    commandTimeout: RUN_LOG_COMMAND_TIMEOUT_MS,
    lazyConnect: false,
  });
  const controller = new AbortController();
  const timer = deps.clock.setTimeout(() => controller.abort(), CONNECT_WAIT_MS);
  try {
    if (runLogClient.status !== 'ready') await once(runLogClient, 'ready', { signal: controller.signal });
  } catch {
    deps.logger.warn(`Redis did not answer within ${CONNECT_WAIT_MS} ms: starting on local fallbacks`);
  } finally {
    deps.clock.clearTimeout(timer);
  }
  return {
    client,
    runLogClient,
    keyPrefix: config.redisKeyPrefix,
    instanceId,
    presence: registry,
    async close() {
      await runLogClient.quit().catch(() => runLogClient.disconnect());
    },
  };
}

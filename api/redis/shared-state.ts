import { once } from 'node:events';
import type { Redis } from 'ioredis';
import type { Config } from '../../config';
import type { Clock } from '../clock';
import type { Logger } from '../logger';
import { InstancePresence, newInstanceId } from './instance-presence';
import { createRedisConnection, duplicateConnection } from './redis-connection';

/** How long start waits for Redis before going on without it (it keeps reconnecting meanwhile). */
const CONNECT_WAIT_MS = 3000;
/**
 * The run event log's writes wait longer than other commands: a lost event is a gap in every
 * resume of its run, while a late one costs nothing (on a starved CPU, 1 s timers fire before
 * replies that did arrive are read).
 */
const RUN_LOG_COMMAND_TIMEOUT_MS = 10_000;

/** What the instances share when REDIS_URL is set: the connection, this instance's id, who is alive. */
export interface SharedState {
  client: Redis;
  /** The run event log's own connection (its writes are ordered and never time out early). */
  runLogClient: Redis;
  keyPrefix: string;
  instanceId: string;
  presence: InstancePresence;
  close(): Promise<void>;
}

/**
 * Connects to Redis (REDIS_URL) and announces this instance. A Redis that is down at start is not
 * fatal: the instance starts on its local fallbacks, and shares again once Redis answers.
 */
export async function connectSharedState(
  config: Pick<Config, 'redisUrl' | 'redisKeyPrefix'>,
  deps: { clock: Clock; logger: Logger; /** The id the shared limits already gave this instance. */ instanceId?: string },
): Promise<SharedState | undefined> {
  if (!config.redisUrl) return undefined;
  const instanceId = deps.instanceId ?? newInstanceId();
  const client = createRedisConnection(config.redisUrl, {
    logger: deps.logger,
    name: `troupe:${instanceId}`,
  });
  const runLogClient = duplicateConnection(client, deps.logger, {
    commandTimeout: RUN_LOG_COMMAND_TIMEOUT_MS,
  });
  const controller = new AbortController();
  const timer = deps.clock.setTimeout(() => controller.abort(), CONNECT_WAIT_MS);
  try {
    await Promise.all(
      [client, runLogClient].map((connection) =>
        connection.status === 'ready' ? undefined : once(connection, 'ready', { signal: controller.signal }),
      ),
    );
  } catch {
    deps.logger.warn(`Redis did not answer within ${CONNECT_WAIT_MS} ms: starting on local fallbacks`);
  } finally {
    deps.clock.clearTimeout(timer);
  }
  const presence = new InstancePresence(instanceId, {
    client,
    keyPrefix: config.redisKeyPrefix,
    clock: deps.clock,
    logger: deps.logger,
  });
  await presence.start();
  return {
    client,
    runLogClient,
    keyPrefix: config.redisKeyPrefix,
    instanceId,
    presence,
    async close() {
      await presence.close();
      for (const connection of [runLogClient, client])
        await connection.quit().catch(() => connection.disconnect());
    },
  };
}

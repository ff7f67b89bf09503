import { Redis } from 'ioredis';
import type { Logger } from '../logger';

/** Commands give up after this long: a slow Redis must cost a chat less than doing without it. */
const COMMAND_TIMEOUT_MS = 1000;

/**
 * The instance's Redis connection (REDIS_URL), built once by the composition root and shared by
 * the run event log, the tool limits and the tool cache. Commands fail at once while Redis is
 * unreachable (no offline queue) so each user falls back to its local behaviour instead of
 * waiting behind a reconnect; the outage is logged once, and so is the recovery.
 */
export function createRedisConnection(url: string, deps: { logger: Logger; name?: string }): Redis {
  const client = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: COMMAND_TIMEOUT_MS,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
    connectionName: deps.name ?? 'troupe',
  });
  watchOutages(client, deps.logger);
  return client;
}

/**
 * A connection of its own for blocking reads (XREAD BLOCK holds the connection it runs on), with
 * the same settings but no command timeout: the BLOCK argument bounds each wait instead.
 */
export function duplicateForBlocking(client: Redis): Redis {
  const reader = client.duplicate({ commandTimeout: undefined, lazyConnect: true, enableOfflineQueue: true });
  // Its reads fail and are retried by their caller; the shared connection reports the outage.
  reader.on('error', () => undefined);
  return reader;
}

/** A connection for pub/sub (a subscribed connection can do nothing else); it queues while offline and resubscribes. */
export function duplicateForSubscribing(client: Redis): Redis {
  const subscriber = client.duplicate({ enableOfflineQueue: true, commandTimeout: undefined });
  subscriber.on('error', () => undefined);
  return subscriber;
}

/** Another connection like `client` (`overrides` aside), its outages logged once too. */
export function duplicateConnection(
  client: Redis,
  logger: Logger,
  overrides: Parameters<Redis['duplicate']>[0] = {},
): Redis {
  const duplicate = client.duplicate(overrides);
  watchOutages(duplicate, logger);
  return duplicate;
}

function watchOutages(client: Redis, logger: Logger): void {
  let down = false;
  // ioredis reports every failed reconnect as an 'error' event: one warning per outage is enough.
  client.on('error', (error: Error) => {
    if (down) return;
    down = true;
    logger.warn({ error: error.message }, 'Redis is unreachable: falling back to local behaviour; retrying');
  });
  client.on('ready', () => {
    if (down) logger.info('Redis is reachable again');
    down = false;
  });
}

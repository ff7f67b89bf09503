import { Redis } from 'ioredis';
import type { Config } from '../../../config';
import type { Clock } from '../../clock';
import type { Logger } from '../../logger';
import { LruResponseCache } from './lru-response-cache';
import { RedisResponseCache } from './redis-response-cache';
import { MAX_ENTRY_BYTES, type ResponseCache } from './response-cache';

/** Redis commands give up after this long: a slow cache must cost a chat less than a miss does. */
const REDIS_COMMAND_TIMEOUT_MS = 500;

/**
 * The response cache the config asks for: Redis (shared by every instance) when REDIS_URL is set,
 * otherwise in-process. A Redis that is down at start is not fatal: calls are misses until it answers.
 */
export function createResponseCache(
  config: Pick<Config, 'llmCache' | 'redisUrl' | 'redisKeyPrefix'>,
  deps: {
    clock: Clock;
    logger: Logger;
    /** The process's Redis connection (the cluster's), when there is one: no connection of its own. */
    client?: Redis;
  },
): ResponseCache {
  const maxEntryBytes = Math.min(MAX_ENTRY_BYTES, config.llmCache.maxBytes);
  if (!config.redisUrl) {
    return new LruResponseCache({ maxBytes: config.llmCache.maxBytes, maxEntryBytes, clock: deps.clock });
  }
  if (deps.client) {
    return new RedisResponseCache({
      client: deps.client,
      keyPrefix: config.redisKeyPrefix,
      maxEntryBytes,
      ownsClient: false,
    });
  }
  const client = new Redis(config.redisUrl, {
    // Fail commands at once while disconnected instead of queueing them behind a reconnect.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
    retryStrategy: (attempt) => Math.min(attempt * 200, 5000),
  });
  let reported = false;
  // ioredis reports every failed reconnect as an 'error' event; one warning per outage is enough
  // (the caching gateway also logs the first failed command).
  client.on('error', (error: Error) => {
    if (reported) return;
    reported = true;
    deps.logger.warn({ error: error.message }, 'Redis (LLM response cache) is unreachable; retrying');
  });
  client.on('ready', () => {
    if (reported) deps.logger.info('Redis (LLM response cache) is reachable again');
    reported = false;
  });
  return new RedisResponseCache({ client, keyPrefix: config.redisKeyPrefix, maxEntryBytes });
}

import { Redis } from 'ioredis';

/**
 * Troupe's one Redis connection factory (REDIS_URL). The composition root builds a process's
 * connections here, once each:
 * - the commands connection (`createRedisConnection`): the shared quota, the instance registry, the
 *   operators' control channel, the tool limits and caches, the LLM response cache;
 * - a subscriber (`duplicateForSubscribing`): a subscribed connection can do nothing else;
 * - the run event log's own connection (its writes are ordered and wait longer, `commandTimeoutMs`);
 * - one per blocking read (`duplicateForBlocking`): XREAD BLOCK holds the connection it runs on.
 */

/** A command that gets no answer within this fails, and the caller's fallback takes over. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 500;

export interface RedisConnectionOptions {
  /** CLIENT SETNAME, so `CLIENT LIST` tells the instances' connections apart. */
  name?: string;
  commandTimeoutMs?: number;
  /**
   * Queue commands while disconnected (a subscriber's re-subscription needs it). Off by default:
   * a start must never wait behind a reconnect, nor run long after its caller gave up.
   */
  offlineQueue?: boolean;
  /** Connect only on `connect()` (the caller then learns at once whether Redis answers). */
  lazy?: boolean;
  /** Every connection error (ioredis reports each failed reconnect); the owner decides what to log. */
  onError?: (error: Error) => void;
  /** Logs the outage once, and the recovery once. */
  logger?: { warn(object: object | string, message?: string): void; info(message: string): void };
}

/**
 * A connection whose commands fail fast instead of queueing while disconnected and time out when
 * Redis hangs; reconnection keeps trying in the background. A command that was sent is never sent
 * again after a reconnect (`maxRetriesPerRequest: 0`): a start the caller gave up on must not be
 * granted later to nobody.
 */
export function createRedisConnection(url: string, options: RedisConnectionOptions = {}): Redis {
  const client = new Redis(url, {
    lazyConnect: options.lazy ?? false,
    enableOfflineQueue: options.offlineQueue ?? false,
    commandTimeout: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    connectTimeout: 2_000,
    // A half-closed socket after a failed ready check is destroyed this soon (ioredis waits 2 s).
    disconnectTimeout: 300,
    maxRetriesPerRequest: 0,
    retryStrategy: (times) => Math.min(100 * times, 1_000),
    ...(options.name ? { connectionName: options.name } : {}),
  });
  client.on('error', (error: Error) => options.onError?.(error));
  if (options.logger) watchOutages(client, options.logger);
  return client;
}

/**
 * A connection of its own for blocking reads (XREAD BLOCK holds the connection it runs on), with
 * the same settings but no command timeout: the BLOCK argument bounds each wait instead.
 */
export function duplicateForBlocking(client: Redis): Redis {
  const reader = client.duplicate({ commandTimeout: undefined, lazyConnect: true, enableOfflineQueue: true });
  // Its reads fail and are retried by their caller; the commands connection reports the outage.
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
  logger: RedisConnectionOptions['logger'],
  overrides: Parameters<Redis['duplicate']>[0] = {},
): Redis {
  const duplicate = client.duplicate(overrides);
  duplicate.on('error', () => undefined);
  if (logger) watchOutages(duplicate, logger);
  return duplicate;
}

function watchOutages(client: Redis, logger: NonNullable<RedisConnectionOptions['logger']>): void {
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

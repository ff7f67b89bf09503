import Redis from 'ioredis';

/** A Redis command that gets no answer within this fails, and the fail-safe takes over. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 500;

/**
 * An ioredis connection for the shared limits: commands fail fast instead of queueing while
 * disconnected (a start must never wait for Redis to come back) and time out when Redis hangs;
 * reconnection keeps trying in the background. Connect it with `connect()` (lazy).
 */
export function createRedisConnection(
  url: string,
  options: {
    commandTimeoutMs?: number;
    /** Queue commands while disconnected (the subscriber's re-subscription needs it). */
    offlineQueue?: boolean;
    onError?: (error: Error) => void;
  } = {},
): Redis {
  const redis = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: options.offlineQueue ?? false,
    commandTimeout: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    connectTimeout: 2_000,
    // A half-closed socket after a failed ready check is destroyed this soon (ioredis waits 2 s).
    disconnectTimeout: 300,
    maxRetriesPerRequest: 0,
    retryStrategy: (times) => Math.min(100 * times, 1_000),
  });
  // Outages are reported by the fail-safe limiter (once); this keeps ioredis from printing them.
  redis.on('error', (error: Error) => options.onError?.(error));
  return redis;
}

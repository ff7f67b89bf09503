import Redis from 'ioredis';
import type { Logger } from '../logger';

/**
 * Whether the Redis at REDIS_URL is reachable, for `troupe_redis_up`, `/api/health` details and
 * the webhook alerts. ioredis tracks its connection itself (and reconnects), so reading the state
 * costs nothing; the scale-out work replaces this with the client its limiter uses.
 */
export interface RedisProbe {
  up(): boolean;
  close(): Promise<void>;
}

export function createRedisProbe(url: string, logger: Logger): RedisProbe {
  const client = new Redis(url, {
    // Fail fast rather than queue commands while down: the probe reports, it never waits.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt) => Math.min(attempt * 500, 5000),
  });
  let wasUp = true;
  client.on('ready', () => {
    if (!wasUp) logger.info('Redis is reachable again');
    wasUp = true;
  });
  client.on('error', (error: Error) => {
    // ioredis emits an error per failed reconnect: log the outage once, not every 5 s.
    if (wasUp) logger.warn({ error: error.message }, 'Redis is unreachable');
    wasUp = false;
  });
  return {
    up: () => client.status === 'ready',
    async close() {
      client.disconnect();
    },
  };
}

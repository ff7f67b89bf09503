import { Redis } from 'ioredis';
import { RedisResponseCache } from '../../../api/llm/cache/redis-response-cache';

/**
 * Closing the Redis response cache while Redis is down: the client must stop reconnecting, or its
 * reconnect timer keeps the process (a test worker, a server that shut down) alive for ever.
 */
describe('RedisResponseCache.close', () => {
  test('with Redis unreachable, close stops the client reconnecting', async () => {
    // Port 1 on loopback: nothing listens, every connection is refused at once.
    const client = new Redis('redis://127.0.0.1:1', {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      // Retries every 10 ms, so a client still reconnecting after close shows it many times over.
      retryStrategy: () => 10,
    });
    client.on('error', () => undefined);
    await new Promise<void>((resolve) => client.once('reconnecting', () => resolve()));
    const cache = new RedisResponseCache({ client, keyPrefix: 'test:' });
    await cache.close();
    let attempts = 0;
    client.on('reconnecting', () => attempts++);
    client.on('connecting', () => attempts++);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(attempts).toBe(0);
  });
});

import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { TEST_REDIS_URL, redisReachable } from '../../helpers/redis-reachable';
import { ManualClock } from '../../../api/clock';
import { LruResponseCache } from '../../../api/llm/cache/lru-response-cache';
import { RedisResponseCache } from '../../../api/llm/cache/redis-response-cache';
import { answer, describeResponseCacheBehaviour } from './response-cache-behaviour';

describe('in-process response cache (behaviour suite)', () => {
  const clocks = new Map<unknown, ManualClock>();
  describeResponseCacheBehaviour({
    async create({ maxEntryBytes }) {
      const clock = new ManualClock();
      const cache = new LruResponseCache({ maxBytes: 1_000_000, maxEntryBytes, clock });
      clocks.set(cache, clock);
      return { cache, expireAll: async () => clock.advance(3_600_000) };
    },
    async destroy({ cache }) {
      clocks.delete(cache);
    },
  });
});

describe('in-process response cache: its byte bound', () => {
  test('least recently used answers go first once the bytes are spent', async () => {
    const cache = new LruResponseCache({ maxBytes: 2000, clock: new ManualClock() });
    for (let index = 0; index < 20; index++) await cache.set(`k${index}`, answer('y'.repeat(200)), 60);
    expect(cache.size()).toBeLessThan(20);
    expect(await cache.get('k0')).toBeUndefined();
    expect((await cache.get('k19'))?.text).toHaveLength(200);
  });
});

/**
 * The same suite against a real Redis: REDIS_URL, else 127.0.0.1:6379. Each test gets its own key
 * prefix and deletes its keys afterwards. Without a reachable Redis it shows up as skipped.
 */
const redisUrl = TEST_REDIS_URL;
const describeWithRedis = redisReachable(redisUrl) ? describe : describe.skip;

describeWithRedis('Redis response cache (behaviour suite)', () => {
  const clients = new Map<unknown, { client: Redis; prefix: string }>();
  describeResponseCacheBehaviour({
    async create({ maxEntryBytes }) {
      const client = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
      const prefix = `troupe-test-${randomUUID()}:`;
      const cache = new RedisResponseCache({ client, keyPrefix: prefix, maxEntryBytes });
      clients.set(cache, { client, prefix });
      return {
        cache,
        // Redis keeps its own clock: expire the test's keys now instead of waiting for it.
        async expireAll() {
          const keys = await client.keys(`${prefix}*`);
          for (const key of keys) await client.pexpire(key, 1);
          // PEXPIRE 1 expires within the next millisecond; a PTTL of -2 says the key is gone.
          while ((await Promise.all(keys.map((key) => client.pttl(key)))).some((ttl) => ttl !== -2)) {
            await new Promise((resolve) => setImmediate(resolve));
          }
        },
      };
    },
    async destroy({ cache }) {
      const { client, prefix } = clients.get(cache)!;
      const keys = await client.keys(`${prefix}*`);
      if (keys.length > 0) await client.del(...keys);
      clients.delete(cache);
      await cache.close?.();
    },
  });

  test('answers are written with SET … PX under the prefix, as JSON', async () => {
    const client = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
    const prefix = `troupe-test-${randomUUID()}:`;
    const cache = new RedisResponseCache({ client, keyPrefix: prefix });
    try {
      await cache.set('abc', answer('hello'), 90);
      const ttl = await client.pttl(`${prefix}llm:abc`);
      expect(ttl).toBeGreaterThan(80_000);
      expect(ttl).toBeLessThanOrEqual(90_000);
      expect(JSON.parse((await client.get(`${prefix}llm:abc`))!)).toMatchObject({ text: 'hello' });
    } finally {
      await client.del(`${prefix}llm:abc`);
      await cache.close();
    }
  });
});

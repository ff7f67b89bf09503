import type { Redis } from 'ioredis';
import { RedisToolCache, toolCacheRedisKey } from '../../api/tools/redis-tool-cache';
import { LruToolCache, type ToolCache } from '../../api/tools/tool-cache';
import { deleteRedisPrefix, randomRedisPrefix, testRedisClient } from '../helpers/redis';

/** The tool cache port's behaviour, once for each adapter (real time; short TTLs, generous waits). */
function toolCacheBehaviour(name: string, build: () => ToolCache): void {
  describe(`ToolCache behaviour: ${name}`, () => {
    test('returns what was stored, and nothing for an unknown key', async () => {
      const cache = build();
      await cache.set('tool:search_web:{"q":"a"}', 'result a', 60);
      expect(await cache.get('tool:search_web:{"q":"a"}')).toBe('result a');
      expect(await cache.get('tool:search_web:{"q":"b"}')).toBeUndefined();
    });

    test('an entry expires after its ttl', async () => {
      const cache = build();
      await cache.set('short', 'gone soon', 0.2);
      expect(await cache.get('short')).toBe('gone soon');
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect(await cache.get('short')).toBeUndefined();
    });

    test('a ttl of 0 stores nothing', async () => {
      const cache = build();
      await cache.set('never', 'x', 0);
      expect(await cache.get('never')).toBeUndefined();
    });
  });
}

toolCacheBehaviour('in-process LRU', () => new LruToolCache());

describe('on a real Redis', () => {
  let redis: Redis;
  const prefix = randomRedisPrefix('tool-cache');
  beforeAll(() => {
    redis = testRedisClient();
  });
  afterAll(async () => {
    await deleteRedisPrefix(redis, prefix);
    await redis.quit();
  });
  toolCacheBehaviour(
    'Redis',
    () => new RedisToolCache({ client: redis, keyPrefix: prefix, fallback: new LruToolCache() }),
  );

  test('key names carry a hash of the arguments, never the user’s words', async () => {
    const cache = new RedisToolCache({ client: redis, keyPrefix: prefix, fallback: new LruToolCache() });
    const key = 'tool:search_web:{"query":"help me make a study plan for my exam"}';
    await cache.set(key, 'results', 60);
    const names = await redis.keys(`${prefix}*`);
    expect(names.some((name) => name.includes('study plan'))).toBe(false);
    expect(names).toContain(toolCacheRedisKey(prefix, key));
    expect(toolCacheRedisKey(prefix, key)).toMatch(new RegExp(`^${prefix}cache:tool:[0-9a-f]{64}$`));
    expect(await cache.get(key)).toBe('results');
  });
});

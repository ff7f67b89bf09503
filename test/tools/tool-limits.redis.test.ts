import { Redis } from 'ioredis';
import { systemClock } from '../../api/clock';
import { RedisToolCache } from '../../api/tools/redis-tool-cache';
import { RedisToolRateLimiter } from '../../api/tools/redis-tool-rate-limiter';
import { InMemoryToolRateLimiter } from '../../api/tools/tool-rate-limiter';
import { LruToolCache } from '../../api/tools/tool-cache';
import { deleteRedisPrefix, randomRedisPrefix, testRedisClient } from '../helpers/redis';

/** Redis-only cases of the shared tool limits: several instances racing, a lease expiring, Redis gone. */
describe('shared tool limits in Redis', () => {
  let redis: Redis;
  let prefix: string;
  const signal = () => new AbortController().signal;
  const warnings: string[] = [];
  const logger = { warn: (_details: Record<string, unknown>, message: string) => warnings.push(message) };
  const limiter = (
    client: Redis,
    overrides: Partial<ConstructorParameters<typeof RedisToolRateLimiter>[0]> = {},
  ) =>
    new RedisToolRateLimiter({
      client,
      keyPrefix: prefix,
      tool: 'search_web',
      maxConcurrent: 5,
      maxPerMinute: 1000,
      maxWaitMs: 100,
      leaseMs: 30_000,
      fallback: new InMemoryToolRateLimiter({ tool: 'search_web', maxConcurrent: 1, maxPerMinute: 1 }),
      clock: systemClock,
      logger,
      ...overrides,
    });

  beforeAll(() => {
    redis = testRedisClient();
  });
  beforeEach(() => {
    prefix = randomRedisPrefix('tool-limits');
    warnings.length = 0;
  });
  afterEach(() => deleteRedisPrefix(redis, prefix));
  afterAll(async () => {
    await redis.quit();
  });

  test('three instances racing for 5 slots get exactly 5 between them', async () => {
    const clients = [testRedisClient(), testRedisClient(), testRedisClient()];
    try {
      const instances = clients.map((client) => limiter(client, { maxWaitMs: 0 }));
      const attempts = await Promise.allSettled(
        Array.from({ length: 30 }, (_, index) => instances[index % 3].acquire(signal())),
      );
      expect(attempts.filter((attempt) => attempt.status === 'fulfilled')).toHaveLength(5);
      expect(await redis.zcard(`${prefix}tool-limit:search_web:leases`)).toBe(5);
    } finally {
      await Promise.all(clients.map((client) => client.quit()));
    }
  });

  test('the per-minute bound holds across instances', async () => {
    const clients = [testRedisClient(), testRedisClient()];
    try {
      const instances = clients.map((client) =>
        limiter(client, { maxConcurrent: 100, maxPerMinute: 7, maxWaitMs: 0 }),
      );
      const attempts = await Promise.allSettled(
        Array.from({ length: 20 }, (_, index) =>
          instances[index % 2].acquire(signal()).then((permit) => permit.release()),
        ),
      );
      expect(attempts.filter((attempt) => attempt.status === 'fulfilled')).toHaveLength(7);
    } finally {
      await Promise.all(clients.map((client) => client.quit()));
    }
  });

  test('a permit never released (its instance killed) gives its slot back when its lease ends', async () => {
    const killed = limiter(redis, { maxConcurrent: 1, leaseMs: 300 });
    await killed.acquire(signal()); // never released
    const survivor = limiter(redis, { maxConcurrent: 1, leaseMs: 300, maxWaitMs: 5000 });
    const permit = await survivor.acquire(signal());
    expect(permit).toBeDefined();
  });

  test('with Redis unreachable, calls use the local share and the outage is logged once', async () => {
    const dead = new Redis('redis://127.0.0.1:1', {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    const offline = limiter(dead);
    (await offline.acquire(signal())).release();
    await expect(offline.acquire(signal())).rejects.toMatchObject({ code: 'tool_rate_limited' });
    expect(warnings.filter((message) => message.includes('local share'))).toHaveLength(1);

    const cache = new RedisToolCache({
      client: dead,
      keyPrefix: prefix,
      fallback: new LruToolCache(),
      logger,
    });
    await cache.set('k', 'v', 60);
    expect(await cache.get('k')).toBe('v');
    expect(warnings.filter((message) => message.includes('tool cache unreachable'))).toHaveLength(1);
    dead.disconnect();
  });
});

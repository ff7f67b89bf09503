import type { Redis } from 'ioredis';
import { systemClock } from '../../api/clock';
import { RedisToolRateLimiter } from '../../api/tools/redis-tool-rate-limiter';
import { InMemoryToolRateLimiter } from '../../api/tools/tool-rate-limiter';
import { deleteRedisPrefix, randomRedisPrefix, testRedisClient } from '../helpers/redis';
import { toolRateLimiterBehaviour } from './tool-rate-limiter-behaviour';

toolRateLimiterBehaviour('in-memory', async (shape) => new InMemoryToolRateLimiter({ tool: 't', ...shape }));

describe('on a real Redis', () => {
  let redis: Redis;
  const prefix = randomRedisPrefix('tool-limits');
  beforeAll(() => {
    redis = testRedisClient();
  });
  afterAll(async () => {
    await deleteRedisPrefix(redis, prefix);
    await redis.quit();
  });
  let round = 0;
  toolRateLimiterBehaviour(
    'Redis',
    async (shape) =>
      new RedisToolRateLimiter({
        client: redis,
        // Each test its own keys: a previous test's starts must not count against the next.
        keyPrefix: `${prefix}${round++}:`,
        tool: 't',
        ...shape,
        leaseMs: 30_000,
        fallback: new InMemoryToolRateLimiter({ tool: 't', ...shape }),
        clock: systemClock,
      }),
    () => deleteRedisPrefix(redis, prefix),
  );
});

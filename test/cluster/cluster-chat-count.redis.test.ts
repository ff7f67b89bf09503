import type Redis from 'ioredis';
import { systemClock } from '../../api/clock';
import { RedisClusterChatCount } from '../../api/cluster/cluster-chat-count';
import { emptyFigures, InstanceRegistry } from '../../api/cluster/instance-registry';
import { connectRedis, randomPrefix, removeKeys } from '../llm/redis-helpers';

/** The cluster's chat count against the real Redis (REDIS_TEST_URL), under a random key prefix. */
describe('RedisClusterChatCount', () => {
  let redis: Redis;
  let prefix: string;
  const registries: InstanceRegistry[] = [];

  beforeEach(async () => {
    redis = await connectRedis();
    prefix = randomPrefix();
  });

  afterEach(async () => {
    for (const registry of registries.splice(0)) await registry.close();
    await removeKeys(redis, prefix);
    redis.disconnect();
  });

  async function liveInstance(id: string): Promise<RedisClusterChatCount> {
    const registry = new InstanceRegistry({
      redis,
      keyPrefix: prefix,
      instanceId: id,
      host: 'test',
      clock: systemClock,
      heartbeatMs: 60_000,
      ttlMs: 60_000,
    });
    registries.push(registry);
    await registry.start(emptyFigures);
    return new RedisClusterChatCount({ redis, keyPrefix: prefix, instanceId: id });
  }

  test('each instance writes what it holds and reads the live instances’ total in one step', async () => {
    const a = await liveInstance('a');
    const b = await liveInstance('b');
    expect(await a.report(3)).toBe(3);
    expect(await b.report(2)).toBe(5);
    // Absolute, not an increment: writing the same figure twice (a retried write) counts once.
    expect(await a.report(1)).toBe(3);
    expect(await a.report(1)).toBe(3);
  });

  test('an instance that stopped heartbeating (killed) drops out of the total', async () => {
    const a = await liveInstance('a');
    // A killed instance: its last count stays, its heartbeat entry has lapsed.
    await redis.hset(`${prefix}admitted-chats`, 'ghost', 40);
    await redis.zadd(`${prefix}instances`, Date.now() - 1_000, 'ghost');
    expect(await a.report(2)).toBe(2);
    expect(await redis.hexists(`${prefix}admitted-chats`, 'ghost')).toBe(0);
  });

  test('Redis unreachable: resolves undefined (the heartbeat figures decide), never rejects', async () => {
    const a = await liveInstance('a');
    redis.disconnect();
    await expect(a.report(1)).resolves.toBeUndefined();
    redis = await connectRedis();
  });
});

import type Redis from 'ioredis';
import { systemClock } from '../../api/clock';
import { emptyFigures, InstanceRegistry, type LiveFigures } from '../../api/cluster/instance-registry';
import { connectRedis, randomPrefix, removeKeys, waitFor } from '../llm/redis-helpers';

/**
 * The registry against the real Redis, under a random key prefix: which instances are live, and
 * whether each has said since a given moment that it is back on Redis (the end of a recovery).
 * The beat times come from Redis's clock, placed on this process's by their age.
 */
describe('InstanceRegistry', () => {
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

  async function live(id: string, figures: () => LiveFigures): Promise<InstanceRegistry> {
    const registry = new InstanceRegistry({
      redis,
      keyPrefix: prefix,
      instanceId: id,
      host: 'test',
      clock: systemClock,
      heartbeatMs: 50,
      ttlMs: 60_000,
    });
    registries.push(registry);
    await registry.start(figures);
    return registry;
  }

  test('the others are back once each has published since the moment asked about, and none is degraded', async () => {
    let otherMode = 'shared';
    const me = await live('me', emptyFigures);
    await live('other', () => ({ ...emptyFigures(), limiter: otherMode }));
    await waitFor(() => me.count() === 2);
    // Figures published before the outage say nothing about after it.
    const outageAt = systemClock.now();
    expect(me.othersBackSince(outageAt)).toBe(false);
    // Back on Redis but not yet handed over: it says degraded.
    otherMode = 'degraded';
    await waitFor(() => me.instances().some((instance) => instance.limiter === 'degraded'));
    expect(me.othersBackSince(outageAt)).toBe(false);
    otherMode = 'recovering';
    await waitFor(() => me.othersBackSince(outageAt));
    expect(me.instances().find((instance) => instance.id === 'other')?.limiter).toBe('recovering');
    // A later outage: the figures of before it do not count again.
    expect(me.othersBackSince(systemClock.now() + 1_000)).toBe(false);
  });

  test('alone, nobody else has calls to hand over', async () => {
    const me = await live('me', emptyFigures);
    expect(me.othersBackSince(systemClock.now())).toBe(true);
  });
});

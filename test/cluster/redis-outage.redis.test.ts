import type Redis from 'ioredis';
import request from 'supertest';
import { startTcpProxy, type TcpProxy } from '../../scripts/bench/tcp-proxy';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';
import { connectRedis, randomPrefix, removeKeys, waitFor } from '../llm/redis-helpers';

/**
 * A Troupe instance whose Redis becomes unreachable (a cut proxy between them): it keeps serving on
 * its share of the quota, says `degraded` and why in /api/health, and goes back to the shared limits
 * when Redis answers again and it has handed its calls over.
 */
describe('Redis outage under a running Troupe', () => {
  const prefix = randomPrefix();
  let proxy: TcpProxy;
  let direct: Redis;
  let troupe: TestTroupe;

  beforeAll(async () => {
    direct = await connectRedis();
    proxy = await startTcpProxy(6379);
    troupe = await startTestTroupe(
      { REDIS_URL: proxy.url, REDIS_KEY_PREFIX: prefix, LLM_MAX_CONCURRENT: '4' },
      { clusterTuning: { heartbeatMs: 100, instanceTtlMs: 1_000, probeEveryMs: 100, commandTimeoutMs: 300 } },
    );
  });

  afterAll(async () => {
    await troupe.stop();
    await proxy.close();
    await removeKeys(direct, prefix);
    direct.disconnect();
  });

  const chat = () =>
    request(troupe.url).post('/api/chat').set('Accept', 'application/json').send({ message: 'hello there' });

  test('degraded with the reason while Redis is unreachable, serving on its share; shared again after', async () => {
    const before = await request(troupe.url).get('/api/health').expect(200);
    expect(before.body.services.redis).toBe('healthy');
    expect((await chat()).status).toBe(200);

    proxy.cut();
    await waitFor(
      async () => (await request(troupe.url).get('/api/health')).body.services.redis === 'degraded',
    );
    const during = await request(troupe.url).get('/api/health').expect(200);
    expect(during.body.status).toBe('degraded');
    expect(during.body.details.redis).toMatchObject({
      mode: 'degraded',
      reason: expect.stringMatching(/Redis unreachable/),
      instances: 1,
    });
    // One instance: its share is the whole quota, and chats still complete.
    expect((await chat()).status).toBe(200);

    proxy.restore();
    await waitFor(
      async () => (await request(troupe.url).get('/api/health')).body.details.redis.mode !== 'degraded',
      15_000,
    );
    const after = await request(troupe.url).get('/api/health').expect(200);
    // Alone in the cluster, nobody else has calls to hand over: once its own are with Redis, the
    // shared limits alone apply (with other instances it would keep its share until they are back).
    expect(after.body.details.redis.mode).toBe('shared');
    expect(after.body.services.redis).toBe('healthy');
    expect((await chat()).status).toBe(200);
  }, 60_000);
});

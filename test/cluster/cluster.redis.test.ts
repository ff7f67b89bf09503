import type Redis from 'ioredis';
import request from 'supertest';
import { startSimServer, type SimServer } from '../../api/llm/sim/sim-server';
import { openSse, type SseStream } from '../helpers/sse-client';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';
import { REDIS_URL, connectRedis, randomPrefix, removeKeys, waitFor } from '../llm/redis-helpers';

/**
 * Three real Troupe instances (startTroupe on free ports), the same REDIS_URL and key prefix, each
 * configured with the whole provider quota, against one quota-enforcing sim-llm: together they
 * must not draw a single 429, and operators see and steer them as one.
 */
describe('three Troupe instances sharing one provider quota through Redis', () => {
  const QUOTA_CONCURRENCY = 3;
  const TOKEN = 'cluster-admin-token';
  const prefix = randomPrefix();
  let sim: SimServer;
  let direct: Redis;
  const instances: TestTroupe[] = [];

  beforeAll(async () => {
    direct = await connectRedis();
    sim = await startSimServer({
      port: 0,
      rpm: 3000,
      concurrency: QUOTA_CONCURRENCY,
      latencyMs: 20,
      tps: 2000,
    });
    for (let index = 0; index < 3; index++) {
      instances.push(
        await startTestTroupe(
          {
            LLM_PROVIDER: 'openai',
            LLM_BASE_URL: sim.baseUrl,
            LLM_API_KEY: 'test-key',
            LLM_MODEL: 'sim-model',
            LLM_MAX_CONCURRENT: String(QUOTA_CONCURRENCY),
            LLM_MAX_RPM: '3000',
            LLM_TIMEOUT: '600000',
            REDIS_URL,
            REDIS_KEY_PREFIX: prefix,
            ADMIN_TOKEN: TOKEN,
          },
          { clusterTuning: { heartbeatMs: 200, instanceTtlMs: 1_000 } },
        ),
      );
    }
    await waitFor(async () => {
      const status = await request(instances[0].url).get('/api/queue/status');
      return status.body.instances?.length === 3;
    });
  });

  afterAll(async () => {
    for (const instance of instances) await instance.stop();
    await sim.close();
    await removeKeys(direct, prefix);
    direct.disconnect();
  });

  test('30 chats spread over the instances all complete with zero provider 429s', async () => {
    const chats: SseStream[] = await Promise.all(
      Array.from({ length: 30 }, (_, index) =>
        openSse(`${instances[index % 3].url}/api/chat`, {
          body: { message: `Question number ${index}: how do rate limits work?` },
          headers: { 'X-User-Id': `user-${index % 7}` },
        }),
      ),
    );
    await Promise.all(chats.map((chat) => chat.ended));
    for (const chat of chats) {
      expect(chat.events.at(-1)).toMatchObject({ event: 'done', data: { answer: expect.any(String) } });
    }
    const stats = sim.stats();
    expect(stats.rejected429).toBe(0);
    expect(stats.maxInFlight).toBeLessThanOrEqual(QUOTA_CONCURRENCY);
    expect(stats.completed).toBeGreaterThanOrEqual(30 * 4);
    // Every instance worked: the quota was shared, not won by one.
    for (const instance of instances) expect(instance.scheduler.status().totalSuccess).toBeGreaterThan(0);
  }, 120_000);

  test('queue status shows the cluster, this instance and the list; health reports Redis', async () => {
    // Figures travel with the heartbeats (every 200 ms here), each instance's at its own moment: a
    // heartbeat can carry the last success while the lease it held is still being given back.
    await waitFor(async () => {
      const status = await request(instances[1].url).get('/api/queue/status');
      return (
        status.body.queue.totalSuccess === sim.stats().completed &&
        status.body.queue.currentRPM === sim.stats().accepted &&
        status.body.queue.activeRequests === 0
      );
    });
    const status = await request(instances[1].url).get('/api/queue/status').expect(200);
    expect(status.body.instances).toHaveLength(3);
    expect(status.body.instance.id).toEqual(expect.any(String));
    expect(status.body.instance.totalSuccess).toBe(instances[1].scheduler.status().totalSuccess);
    expect(status.body.queue.maxConcurrency).toBe(QUOTA_CONCURRENCY);
    expect(status.body.queue.activeRequests).toBe(0);
    // Leases held against calls running, here and for the cluster: after the burst, none of either.
    await waitFor(async () => {
      const { body } = await request(instances[1].url).get('/api/queue/status');
      return body.queue.leases?.cluster.inRedis === 0 && body.queue.leases.cluster.held === 0;
    });
    const quiet = await request(instances[1].url).get('/api/queue/status').expect(200);
    expect(quiet.body.queue.leases).toEqual({
      instance: { held: 0, unreleased: 0, callsRunning: 0 },
      cluster: { inRedis: 0, held: 0, callsRunning: 0 },
    });
    for (const figures of quiet.body.instances)
      expect(figures).toMatchObject({ leasesHeld: 0, activeRequests: 0 });
    const metrics = (await request(instances[1].url).get('/metrics').expect(200)).text;
    for (const name of [
      'troupe_llm_calls_running',
      'troupe_llm_leases_held',
      'troupe_llm_leases_unreleased',
      'troupe_llm_cluster_leases',
      'troupe_llm_cluster_calls_running',
    ])
      expect(metrics).toMatch(new RegExp(`^${name} 0$`, 'm'));
    const health = await request(instances[2].url).get('/api/health').expect(200);
    expect(health.body.services.redis).toBe('healthy');
    expect(health.body.details.redis).toMatchObject({ mode: 'shared', instances: 3 });
  });

  test('pause, resume and clear on one instance act on every instance', async () => {
    const auth = { Authorization: `Bearer ${TOKEN}` };
    const paused = await request(instances[0].url)
      .post('/api/queue/pause')
      .set(auth)
      .send({ refuseNewChats: true })
      .expect(200);
    expect(paused.body.cluster).toMatchObject({ delivered: true });
    await waitFor(() => instances.every((instance) => instance.scheduler.status().refusingNewChats));
    await request(instances[2].url)
      .post('/api/chat')
      .set('Accept', 'application/json')
      .send({ message: 'hi' })
      .expect(503);
    await request(instances[1].url).post('/api/queue/resume').set(auth).expect(200);
    await waitFor(() => instances.every((instance) => !instance.scheduler.isPaused));
    await request(instances[0].url).delete('/api/queue/clear').set(auth).expect(200);
  });
});

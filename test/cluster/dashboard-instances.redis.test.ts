import type Redis from 'ioredis';
import request from 'supertest';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';
import { REDIS_URL, connectRedis, randomPrefix, removeKeys, waitFor } from '../llm/redis-helpers';

/**
 * The dashboard of a cluster: whichever instance answers, its snapshot lists every instance, the
 * same ones (ids, figures' fields) GET /api/queue/status lists, and the count agrees with
 * `queue.instanceCount`.
 */
describe('the dashboard snapshot of instances sharing Redis', () => {
  const prefix = randomPrefix();
  let direct: Redis;
  const instances: TestTroupe[] = [];

  beforeAll(async () => {
    direct = await connectRedis();
    for (let index = 0; index < 2; index++) {
      instances.push(
        await startTestTroupe(
          { REDIS_URL, REDIS_KEY_PREFIX: prefix },
          { clusterTuning: { heartbeatMs: 200, instanceTtlMs: 1_000 } },
        ),
      );
    }
    await waitFor(async () => {
      const answers = await Promise.all(
        instances.map((instance) => request(instance.url).get('/api/dashboard/snapshot')),
      );
      return answers.every((answer) => answer.body.instances?.length === 2);
    });
  });

  afterAll(async () => {
    for (const instance of instances) await instance.stop();
    await removeKeys(direct, prefix);
    direct.disconnect();
  });

  test('each instance lists both, as /api/queue/status does, and says which one answered', async () => {
    const answeredBy = new Set<string>();
    for (const instance of instances) {
      const snapshot = (await request(instance.url).get('/api/dashboard/snapshot').expect(200)).body;
      const status = (await request(instance.url).get('/api/queue/status').expect(200)).body;
      const ids = (rows: Array<{ id: string }>) => rows.map((row) => row.id).sort();
      expect(ids(snapshot.instances)).toEqual(ids(status.instances));
      expect(snapshot.instances).toHaveLength(status.queue.instanceCount);
      expect(snapshot.instances).toHaveLength(2);
      expect(snapshot.answeredBy).toBe(status.instance.id);
      expect(Object.keys(snapshot.instances[0]).sort()).toEqual(Object.keys(status.instances[0]).sort());
      // Rows in a stable order, so the page's table does not reshuffle with each answer.
      expect(snapshot.instances.map((row: { id: string }) => row.id)).toEqual(ids(snapshot.instances));
      answeredBy.add(snapshot.answeredBy);
    }
    expect(answeredBy.size).toBe(2);
  });

  test('an instance that leaves drops out of every snapshot', async () => {
    const leaving = instances.pop()!;
    await leaving.stop();
    await waitFor(async () => {
      const snapshot = (await request(instances[0].url).get('/api/dashboard/snapshot')).body;
      return snapshot.instances.length === 1;
    });
    const status = (await request(instances[0].url).get('/api/queue/status').expect(200)).body;
    expect(status.queue.instanceCount).toBe(1);
  });
});

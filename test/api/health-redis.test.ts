import request from 'supertest';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';

/** With REDIS_URL, /api/health reports Redis (the CI machine runs one at 127.0.0.1:6379). */
describe('/api/health with REDIS_URL', () => {
  async function healthUntil(troupe: TestTroupe, redis: 'up' | 'down') {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const response = await request(troupe.url).get('/api/health');
      if (response.body.details?.redis === redis || Date.now() > deadline) return response;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  test('a reachable Redis is "up" and the service stays healthy', async () => {
    const troupe = await startTestTroupe({ REDIS_URL: 'redis://127.0.0.1:6379' });
    try {
      const response = await healthUntil(troupe, 'up');
      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ status: 'healthy', details: { redis: 'up' } });
    } finally {
      await troupe.stop();
    }
  });

  test('an unreachable Redis is "down": degraded, not unhealthy (each instance goes on alone)', async () => {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    const troupe = await startTestTroupe({ REDIS_URL: 'redis://127.0.0.1:1' });
    try {
      const response = await healthUntil(troupe, 'down');
      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ status: 'degraded', details: { redis: 'down' } });
      const metrics = await request(troupe.url).get('/metrics');
      expect(metrics.text).toMatch(/^troupe_redis_up 0$/m);
    } finally {
      await troupe.stop();
    }
  });
});

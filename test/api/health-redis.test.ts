import request from 'supertest';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';

/**
 * With REDIS_URL, /api/health reports Redis (the CI machine runs one at 127.0.0.1:6379) as the
 * shared limits see it: `services.redis` healthy while shared, degraded on the fail-safe share.
 */
describe('/api/health with REDIS_URL', () => {
  async function healthUntil(troupe: TestTroupe, level: 'healthy' | 'degraded') {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const response = await request(troupe.url).get('/api/health');
      if (response.body.services?.redis === level || Date.now() > deadline) return response;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  test('a reachable Redis keeps the limits shared and the service healthy', async () => {
    const troupe = await startTestTroupe({
      REDIS_URL: 'redis://127.0.0.1:6379',
      REDIS_KEY_PREFIX: `troupe-health-${process.pid}-${Date.now()}:`,
    });
    try {
      const response = await healthUntil(troupe, 'healthy');
      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({
        status: 'healthy',
        services: { redis: 'healthy' },
        details: { redis: { mode: 'shared' } },
      });
      const metrics = await request(troupe.url).get('/metrics');
      expect(metrics.text).toMatch(/^troupe_redis_up 1$/m);
    } finally {
      await troupe.stop();
    }
  });

  test('an unreachable Redis is degraded, not unhealthy (each instance goes on with its share)', async () => {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    const troupe = await startTestTroupe({ REDIS_URL: 'redis://127.0.0.1:1' });
    try {
      const response = await healthUntil(troupe, 'degraded');
      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({
        status: 'degraded',
        services: { redis: 'degraded' },
        details: { redis: { mode: 'degraded' } },
      });
      const metrics = await request(troupe.url).get('/metrics');
      expect(metrics.text).toMatch(/^troupe_redis_up 0$/m);
    } finally {
      await troupe.stop();
    }
  });
});

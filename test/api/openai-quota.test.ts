import request from 'supertest';
import { openSse, type SseStream } from '../helpers/sse-client';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';
import { startSimServer, type SimServer } from '../../api/llm/sim/sim-server';

/**
 * Troupe with LLM_PROVIDER=openai against the standalone sim-llm server, whose quota is tight and
 * enforced with 429s like a real provider: every chat must complete without a single 429.
 */
describe('LLM_PROVIDER=openai against a quota-enforcing provider', () => {
  const QUOTA_CONCURRENCY = 3;
  let sim: SimServer;
  let troupe: TestTroupe;

  beforeAll(async () => {
    sim = await startSimServer({
      port: 0,
      rpm: 600,
      concurrency: QUOTA_CONCURRENCY,
      latencyMs: 20,
      tps: 2000,
    });
    troupe = await startTestTroupe({
      LLM_PROVIDER: 'openai',
      LLM_BASE_URL: sim.baseUrl,
      LLM_API_KEY: 'test-key',
      LLM_MODEL: 'sim-model',
      LLM_MAX_CONCURRENT: String(QUOTA_CONCURRENCY),
      LLM_MAX_RPM: '600',
      // This test is about staying inside the quota, not admission: on a loaded machine the measured
      // latency could make admission refuse part of the burst, so every chat is let in.
      LLM_TIMEOUT: '600000',
    });
  });
  afterAll(async () => {
    await troupe.stop();
    await sim.close();
  });

  test('many concurrent chats all complete, with zero 429s and never more in flight than the quota', async () => {
    const chats: SseStream[] = await Promise.all(
      Array.from({ length: 20 }, (_, index) =>
        openSse(`${troupe.url}/api/chat`, {
          body: { message: `Question number ${index}: how do rate limits work?` },
          headers: { 'X-User-Id': `user-${index % 5}` },
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
    expect(stats.completed).toBeGreaterThanOrEqual(20 * 4);

    const status = await request(troupe.url).get('/api/queue/status').expect(200);
    expect(status.body.queue.counters.rateLimited).toBe(0);
    expect(status.body.queue.totalFailed).toBe(0);
    expect(status.body.queue.totalSuccess).toBe(stats.completed);
  });
});

describe('LLM_PROVIDER=openai with Troupe set above the provider quota', () => {
  let sim: SimServer;
  let troupe: TestTroupe;

  beforeAll(async () => {
    // Calls long enough to overlap even when a loaded machine staggers the eight arrivals.
    sim = await startSimServer({ port: 0, rpm: 600, concurrency: 2, latencyMs: 400, tps: 2000 });
    troupe = await startTestTroupe({
      LLM_PROVIDER: 'openai',
      LLM_BASE_URL: sim.baseUrl,
      LLM_MODEL: 'sim-model',
      LLM_MAX_CONCURRENT: '8',
    });
  });
  afterAll(async () => {
    await troupe.stop();
    await sim.close();
  });

  test('429s are retried after Retry-After and shrink the effective limit; the chats still complete', async () => {
    const chats = await Promise.all(
      Array.from({ length: 8 }, (_, index) =>
        openSse(`${troupe.url}/api/chat`, { body: { message: `single question ${index}`, mode: 'single' } }),
      ),
    );
    await Promise.all(chats.map((chat) => chat.ended));
    for (const chat of chats) expect(chat.events.at(-1)?.event).toBe('done');
    expect(sim.stats().rejected429).toBeGreaterThan(0);
    const status = await request(troupe.url).get('/api/queue/status').expect(200);
    expect(status.body.queue.counters.rateLimited).toBe(sim.stats().rejected429);
    expect(status.body.queue.counters.retries).toBeGreaterThan(0);
    expect(status.body.queue.effective.maxConcurrency).toBeLessThan(8);
  });
});

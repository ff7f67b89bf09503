import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { TEST_REDIS_URL, redisReachable } from '../helpers/redis-reachable';
import request from 'supertest';
import { SimProvider } from '../../api/llm/providers/sim-provider';
import { testConfig } from '../../config';
import { openSse, type SseStream } from '../helpers/sse-client';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';

const QUESTION = 'Please explain how to design a rolling rate limiter for an API gateway and its trade-offs';

async function chat(
  troupe: TestTroupe,
  userId: string,
  message: string,
  conversationId?: string,
): Promise<SseStream> {
  const stream = await openSse(`${troupe.url}/api/chat`, {
    body: { message, mode: 'multi_agent', ...(conversationId ? { conversationId } : {}) },
    headers: { 'X-User-Id': userId },
  });
  await stream.ended;
  return stream;
}

const done = (stream: SseStream) => stream.events.find((event) => event.event === 'done')!.data;
const ends = (stream: SseStream) =>
  stream.events.filter((event) => event.event === 'agent_end').map((event) => event.data);
const reporterText = (stream: SseStream) =>
  stream.events
    .filter((event) => event.event === 'delta' && event.data.agent === 'reporter')
    .map((event) => event.data.text)
    .join('');

describe('LLM response cache, through the public API', () => {
  let troupe: TestTroupe;
  let provider: SimProvider;

  beforeAll(async () => {
    provider = new SimProvider(testConfig({ SIM_LATENCY_MS: '5', SIM_TOKENS_PER_S: '5000' }).sim);
    troupe = await startTestTroupe({ AGENT_PARALLEL: 'off' }, { provider });
  });
  afterAll(() => troupe.stop());

  test('a second user asking the same first question gets the same answer with zero provider calls', async () => {
    const first = await chat(troupe, 'alice', QUESTION);
    const callsForFirst = provider.stats().started;
    expect(callsForFirst).toBe(4);
    expect(ends(first).every((end) => end.cached === false)).toBe(true);

    const second = await chat(troupe, 'bob', QUESTION);
    expect(provider.stats().started).toBe(callsForFirst);
    expect(done(second).answer).toBe(done(first).answer);
    // The answer streams as deltas, as a live one does, and every agent says it came from the cache.
    expect(reporterText(second).trim()).toBe(done(second).answer);
    expect(ends(second).map((end) => end.agent)).toEqual(['host', 'planner', 'critic', 'reporter']);
    expect(ends(second).every((end) => end.cached === true && end.waitMs === 0)).toBe(true);
    expect(done(second).usage).toEqual({ promptTokens: 0, completionTokens: 0 });
    // Bob's conversation is his own: stored under his id, not Alice's.
    const stored = await request(troupe.url)
      .get(`/api/conversations/${done(second).conversationId}`)
      .set('X-User-Id', 'bob');
    expect(stored.status).toBe(200);
    expect(stored.body.messages.at(-1).content).toBe(done(first).answer);
  });

  test('a follow-up with a different history is not served from the cache', async () => {
    const opening = await chat(troupe, 'carol', QUESTION);
    const before = provider.stats().started;
    // The same words again, but now with the conversation's history before them.
    const followUp = await chat(troupe, 'carol', QUESTION, done(opening).conversationId);
    const byAgent = Object.fromEntries(ends(followUp).map((end) => [end.agent, end.cached]));
    // Host and Reporter read the history, so their prompts differ and they ask the provider. (Planner
    // and Critic read only the request and the brief: an identical prompt, rightly shared.)
    expect(byAgent.host).toBe(false);
    expect(byAgent.reporter).toBe(false);
    expect(provider.stats().started).toBeGreaterThanOrEqual(before + 2);
  });

  test('/api/queue/status shows the cache inside queue, next to every existing field', async () => {
    const status = await request(troupe.url).get('/api/queue/status');
    expect(status.status).toBe(200);
    const queue = status.body.queue;
    for (const field of ['queueLength', 'activeRequests', 'totalProcessed', 'utilizationRate', 'byAgent'])
      expect(queue).toHaveProperty(field);
    expect(queue.cache).toMatchObject({ enabled: true, backend: 'memory', ttlSeconds: 3600 });
    expect(queue.cache.cacheHitRate).toMatch(/^\d{1,3}%$/);
    expect(queue.cache.hits).toBeGreaterThanOrEqual(4);
    expect(queue.cache.callsSaved).toBe(queue.cache.hits + queue.cache.sharedHits);
    expect(queue.cache.tokensSaved).toBeGreaterThan(0);
    // Hits never reach the scheduler: it processed exactly the provider calls.
    expect(queue.totalProcessed).toBe(provider.stats().started);
  });

  test('/metrics counts lookups by result and the tokens saved', async () => {
    const metrics = await request(troupe.url).get('/metrics');
    expect(metrics.text).toMatch(/troupe_llm_cache_lookups_total\{result="hit"\} [1-9]/);
    expect(metrics.text).toMatch(/troupe_llm_cache_lookups_total\{result="miss"\} [1-9]/);
    expect(metrics.text).toMatch(/troupe_llm_cache_tokens_saved_total [1-9]/);
  });
});

describe('LLM_CACHE=off', () => {
  test('every chat asks the provider, and the status says the cache is off', async () => {
    const provider = new SimProvider(testConfig({ SIM_LATENCY_MS: '5', SIM_TOKENS_PER_S: '5000' }).sim);
    const troupe = await startTestTroupe({ LLM_CACHE: 'off', AGENT_PARALLEL: 'off' }, { provider });
    try {
      await chat(troupe, 'alice', QUESTION);
      await chat(troupe, 'bob', QUESTION);
      expect(provider.stats().started).toBe(8);
      const status = await request(troupe.url).get('/api/queue/status');
      expect(status.body.queue.cache).toMatchObject({ enabled: false, backend: 'off', hits: 0 });
    } finally {
      await troupe.stop();
    }
  });
});

/**
 * Two instances sharing the cache through a real Redis (REDIS_URL, else 127.0.0.1:6379), under a
 * random key prefix deleted afterwards; skipped, not passed, without a reachable Redis.
 */
const redisUrl = TEST_REDIS_URL;
const describeWithRedis = redisReachable(redisUrl) ? describe : describe.skip;

describeWithRedis('LLM response cache in Redis, shared by two instances', () => {
  test('a question answered on one instance costs the other no provider call', async () => {
    const prefix = `troupe-test-${randomUUID()}:`;
    const env = { REDIS_URL: redisUrl, REDIS_KEY_PREFIX: prefix, AGENT_PARALLEL: 'off' };
    const providers = [0, 1].map(
      () => new SimProvider(testConfig({ SIM_LATENCY_MS: '5', SIM_TOKENS_PER_S: '5000' }).sim),
    );
    const first = await startTestTroupe(env, { provider: providers[0] });
    const second = await startTestTroupe(env, { provider: providers[1] });
    const client = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
    try {
      const answered = await chat(first, 'alice', QUESTION);
      const shared = await chat(second, 'bob', QUESTION);
      expect(providers[0].stats().started).toBe(4);
      expect(providers[1].stats().started).toBe(0);
      expect(done(shared).answer).toBe(done(answered).answer);
      const status = await request(second.url).get('/api/queue/status');
      expect(status.body.queue.cache).toMatchObject({ backend: 'redis', hits: 4, misses: 0 });
    } finally {
      await first.stop();
      await second.stop();
      const keys = await client.keys(`${prefix}*`);
      if (keys.length > 0) await client.del(...keys);
      await client.quit();
    }
  });
});

import request from 'supertest';
import type { Redis } from 'ioredis';
import { SimProvider } from '../../api/llm/providers/sim-provider';
import { openSse } from '../helpers/sse-client';
import { deleteRedisPrefix, randomRedisPrefix, testRedisClient, TEST_REDIS_URL } from '../helpers/redis';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';
import { waitUntil } from '../streaming/wait-until';

/** Two instances sharing one Redis: a run opened on A is resumed, followed and authorised on B. */
describe('resume on any instance (REDIS_URL)', () => {
  let redis: Redis;
  let prefix: string;
  const started: TestTroupe[] = [];
  const start = async (env: Record<string, string> = {}, provider?: SimProvider) => {
    const troupe = await startTestTroupe(
      { REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: prefix, ...env },
      provider ? { provider } : {},
    );
    started.push(troupe);
    return troupe;
  };

  beforeAll(() => {
    redis = testRedisClient();
  });
  beforeEach(() => {
    prefix = randomRedisPrefix('resume');
  });
  afterEach(async () => {
    await Promise.all(started.splice(0).map((troupe) => troupe.stop()));
    await deleteRedisPrefix(redis, prefix);
  });
  afterAll(async () => {
    await redis.quit();
  });

  test('a client that left instance A resumes on B with Last-Event-ID: every later event once, then done; A does not cancel the run B follows', async () => {
    // A short grace on A: the run would be cancelled within 300 ms if A did not know B follows it.
    const a = await start({ SSE_RESUME_GRACE_MS: '300', SIM_LATENCY_MS: '20', SIM_TOKENS_PER_S: '120' });
    const b = await start();
    expect(a.instanceId).not.toBe(b.instanceId);
    const first = await openSse(`${a.url}/api/chat`, {
      body: { message: 'Plan a weekend of hiking near Geneva with a rest day in between' },
    });
    const runId: string = (await first.waitFor((event) => event.event === 'run')).data.runId;
    await waitUntil(() => first.events.filter((event) => event.event === 'delta').length >= 3, 20_000);
    first.abort();
    const lastId = first.events.at(-1)!.id!;

    const resumed = await openSse(`${b.url}/api/runs/${runId}/events`, {
      headers: { 'Last-Event-ID': lastId },
    });
    expect(resumed.status).toBe(200);
    expect(resumed.headers['content-type']).toMatch(/^text\/event-stream/);
    await resumed.ended;
    expect(resumed.events.at(-1)?.event).toBe('done');

    const run = a.runs.get(runId)!;
    const all = run.events().map((record) => record.id);
    const ids = [...first.events, ...resumed.events].map((event) => Number(event.id));
    expect(ids).toEqual(all);
    expect(resumed.events.map((event) => event.data)).toEqual(
      run
        .events()
        .filter((record) => record.id > Number(lastId))
        .map((record) => JSON.parse(JSON.stringify(record.data))),
    );
    const status = await request(a.url).get('/api/sse/status').expect(200);
    expect(status.body).toMatchObject({ cancellations: 0 });

    // Finished: a reconnect with nothing left to send is told to stop (204); without an id, the whole run replays.
    const terminalId = String(all.at(-1));
    await request(b.url).get(`/api/runs/${runId}/events`).set('Last-Event-ID', terminalId).expect(204);
    const replay = await openSse(`${b.url}/api/runs/${runId}/events`);
    await replay.ended;
    expect(replay.events.map((event) => Number(event.id))).toEqual(all);
    expect(replay.events[0]).toMatchObject({ event: 'run', data: { runId } });
  });

  test("with API_KEYS, another user's key cannot read a run on another instance, and unknown runs are not_found", async () => {
    const keys = { API_KEYS: 'key-alice:alice,key-bob:bob' };
    const provider = new SimProvider({ latencyMs: 50, tokensPerSecond: 500 });
    const a = await start(keys, provider);
    const b = await start(keys);
    const chat = await openSse(`${a.url}/api/chat`, {
      body: { message: 'hello there', mode: 'single' },
      headers: { Authorization: 'Bearer key-alice' },
    });
    const runId: string = (await chat.waitFor((event) => event.event === 'run')).data.runId;
    await chat.ended;
    await request(b.url).get(`/api/runs/${runId}/events`).set('Authorization', 'Bearer key-bob').expect(404);
    const mine = await openSse(`${b.url}/api/runs/${runId}/events?access_token=key-alice`);
    await mine.ended;
    expect(mine.events.at(-1)?.event).toBe('done');
    const missing = await request(b.url)
      .get('/api/runs/no-such-run/events')
      .set('Authorization', 'Bearer key-alice')
      .expect(404);
    expect(missing.body.error.code).toBe('not_found');
  });

  test('a client following on B that leaves lets A cancel the run after its grace', async () => {
    const provider = new SimProvider({ latencyMs: 8000, tokensPerSecond: 2000 });
    const a = await start({ SSE_RESUME_GRACE_MS: '500' }, provider);
    const b = await start();
    const first = await openSse(`${a.url}/api/chat`, { body: { message: 'slow one', mode: 'single' } });
    const runId: string = (await first.waitFor((event) => event.event === 'run')).data.runId;
    await first.waitFor((event) => event.event === 'agent_start');
    const follower = await openSse(`${b.url}/api/runs/${runId}/events`, {
      headers: { 'Last-Event-ID': first.events.at(-1)!.id! },
    });
    first.abort();
    // Well past A's grace, B's follower keeps the run alive.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const run = a.runs.get(runId)!;
    expect(run.isFinished).toBe(false);
    follower.abort();
    const last = await run.finished;
    expect(last).toMatchObject({ event: 'error', data: { code: 'cancelled' } });
  });
});

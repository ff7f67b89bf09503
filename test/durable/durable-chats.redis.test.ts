import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Redis } from 'ioredis';
import request from 'supertest';
import { openSse, type SseEvent, type SseStream } from '../helpers/sse-client';
import { deleteRedisPrefix, randomRedisPrefix, testRedisClient, TEST_REDIS_URL } from '../helpers/redis';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';
import { waitUntil } from '../streaming/wait-until';

/**
 * Durable chats: two instances sharing one Redis (and one data directory, standing in for a shared
 * database). A chat whose instance drains, or whose instance is taken for dead, goes on on the
 * other instance; the client reconnects with Last-Event-ID and reaches `done`.
 */
describe('durable chats (REDIS_URL)', () => {
  let redis: Redis;
  let prefix: string;
  let dataDir: string;
  const started: TestTroupe[] = [];
  const start = async (env: Record<string, string> = {}) => {
    const troupe = await startTestTroupe({
      REDIS_URL: TEST_REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
      DATA_DIR: dataDir,
      // Slow enough that a chat streams for a few seconds, in many small deltas.
      SIM_LATENCY_MS: '20',
      SIM_TOKENS_PER_S: '150',
      RUN_ADOPT_INTERVAL_MS: '200',
      AGENT_PARALLEL: 'off',
      ...env,
    });
    started.push(troupe);
    return troupe;
  };

  beforeAll(() => {
    redis = testRedisClient();
  });
  beforeEach(() => {
    prefix = randomRedisPrefix('durable');
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-durable-'));
  });
  afterEach(async () => {
    await Promise.all(started.splice(0).map((troupe) => troupe.stop()));
    await deleteRedisPrefix(redis, prefix);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });
  afterAll(async () => {
    await redis.quit();
  });

  /** Every event of the run once, in order, and each agent's output whole and shown once. */
  function expectWholeRun(events: SseEvent[]): void {
    const ids = events.map((event) => Number(event.id));
    expect(ids).toEqual(ids.map((_, index) => index + 1));
    expect(events.filter((event) => event.event === 'done')).toHaveLength(1);
    expect(events.at(-1)?.event).toBe('done');
    // Each agent turn: one agent_start, its deltas, one agent_end — never a turn's text twice.
    const starts = events.filter((event) => event.event === 'agent_start').length;
    const ends = events.filter((event) => event.event === 'agent_end').length;
    expect(starts).toBe(ends);
    const done = events.at(-1)!.data;
    let reporterText = '';
    for (const event of events) {
      if (event.event === 'agent_start' && event.data.agent === 'reporter') reporterText = '';
      if (event.event === 'delta' && event.data.agent === 'reporter') reporterText += event.data.text;
    }
    expect(reporterText).toBe(done.answer);
  }

  /** What the client read of each agent turn equals what was stored: nothing shown twice or lost. */
  function expectShownAsStored(events: SseEvent[], messages: Array<{ role: string; content: string }>): void {
    const shown: string[] = [];
    for (const event of events) {
      if (event.event === 'agent_start') shown.push('');
      if (event.event === 'delta') shown[shown.length - 1] += event.data.text;
    }
    expect(shown).toEqual(
      messages.filter((message) => message.role !== 'user').map((message) => message.content),
    );
  }

  async function storedTurn(troupe: TestTroupe, conversationId: string) {
    const response = await request(troupe.url)
      .get(`/api/conversations/${conversationId}`)
      .set('X-User-Id', 'anonymous');
    return response.body.messages as Array<{ role: string; agent?: string; content: string }>;
  }

  async function reconnect(url: string, runId: string, first: SseStream): Promise<SseStream> {
    const resumed = await openSse(`${url}/api/runs/${runId}/events`, {
      headers: { 'Last-Event-ID': first.events.at(-1)!.id! },
    });
    expect(resumed.status).toBe(200);
    await resumed.ended;
    return resumed;
  }

  test('a draining instance hands its chat over at the next agent step; the client reconnects to the other instance and reaches done', async () => {
    const a = await start({ SHUTDOWN_GRACE_MS: '30000' });
    const b = await start();
    // Each instance learns how many are alive from its heartbeat (every 2 s): A must know of B.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    const first = await openSse(`${a.url}/api/chat`, {
      body: { message: 'Plan a weekend of hiking near Geneva with a rest day in between' },
    });
    const { runId, conversationId } = (await first.waitFor((event) => event.event === 'run')).data;
    await first.waitFor((event) => event.event === 'delta' && event.data.agent === 'host');
    const drained = a.close();
    // A's stream ends without a terminal event at the next agent boundary: the run goes on on B.
    await first.ended;
    expect(first.events.some((event) => event.event === 'done' || event.event === 'error')).toBe(false);
    expect(first.events.at(-1)?.event).toBe('agent_end');
    await drained;
    const resumed = await reconnect(b.url, runId, first);
    expectWholeRun([...first.events, ...resumed.events]);
    const messages = await storedTurn(b, conversationId);
    expect(messages.filter((message) => message.role === 'user')).toHaveLength(1);
    expect(messages.filter((message) => message.role === 'assistant')).toHaveLength(1);
    expect(messages.at(-1)!.content).toBe(resumed.events.at(-1)!.data.answer);
    expectShownAsStored([...first.events, ...resumed.events], messages);
  }, 40_000);

  test('a run whose owner is taken for dead is adopted by exactly one live instance, continued from its last step, and the old owner (awake again) writes nothing more', async () => {
    // A keeps running the run its client left (no hold): its next write meets the fence.
    const a = await start({ SSE_RESUME_GRACE_MS: '30000' });
    const b = await start();
    const c = await start();
    const first = await openSse(`${a.url}/api/chat`, {
      body: { message: 'Compare three ways to learn a language as an adult' },
    });
    const { runId, conversationId } = (await first.waitFor((event) => event.event === 'run')).data;
    await first.waitFor((event) => event.event === 'agent_end');
    await waitUntil(() => first.events.filter((event) => event.event === 'delta').length >= 12, 20_000);
    first.abort();
    // Let A's last appends land, then hand its ownership to an instance that does not exist, as
    // if A had been presumed dead while it was paused: B or C adopts; A's next write is refused.
    await new Promise((resolve) => setTimeout(resolve, 200));
    await redis.hset(`${prefix}run:${runId}`, 'owner', 'ghost-instance');
    await redis.hset(`${prefix}runs:durable`, runId, 'ghost-instance');

    const resumed = await reconnect(c.url, runId, first);
    expectWholeRun([...first.events, ...resumed.events]);
    // Exactly one instance finished it (A's own copy was fenced off; A, awake, may adopt it too).
    const finishers = [a, b, c].filter((troupe) => troupe.runs.get(runId)?.events().at(-1)?.event === 'done');
    expect(finishers).toHaveLength(1);
    expect(finishers[0].runs.get(runId)!.epoch).toBe(2);
    const messages = await storedTurn(b, conversationId);
    expect(messages.filter((message) => message.role === 'user')).toHaveLength(1);
    expect(messages.filter((message) => message.role === 'assistant')).toHaveLength(1);
    expectShownAsStored([...first.events, ...resumed.events], messages);
    expect(await redis.hget(`${prefix}runs:durable`, runId)).toBeNull();
  }, 40_000);
});

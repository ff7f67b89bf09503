import request from 'supertest';
import { SimProvider } from '../../api/llm/providers/sim-provider';
import { openSse } from '../helpers/sse-client';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';
import { waitUntil } from '../streaming/wait-until';

describe('runs outliving their client, and resuming them', () => {
  let troupe: TestTroupe | undefined;
  afterEach(async () => {
    await troupe?.stop();
    troupe = undefined;
  });

  test('a client that aborts mid-run, with nobody resuming, gets its provider call aborted and its slot reused', async () => {
    const provider = new SimProvider({ latencyMs: 4000, tokensPerSecond: 2000 });
    troupe = await startTestTroupe({ SSE_MAX_CONCURRENT: '1', SSE_RESUME_GRACE_MS: '200' }, { provider });
    const leaving = await openSse(`${troupe.url}/api/chat`, {
      body: { message: 'I will not wait', mode: 'single' },
    });
    await leaving.waitFor((event) => event.event === 'agent_start');
    await waitUntil(() => provider.stats().inFlight === 1, 10_000);
    const waiting = await openSse(`${troupe.url}/api/chat`, { body: { message: 'I will', mode: 'single' } });
    await waiting.waitFor((event) => event.event === 'queued');
    const leavingRun = troupe.runs.get(leaving.events[0].data.runId)!;

    leaving.abort();
    // The grace is over long before the 4 s call would have ended: the call is aborted, not finished.
    const last = await leavingRun.finished;
    expect(last).toMatchObject({ event: 'error', data: { code: 'cancelled' } });
    await waitUntil(() => provider.stats().aborted === 1, 10_000);
    expect(provider.stats().completed).toBe(0);

    // Its slot went to the chat that was waiting.
    await waiting.waitFor((event) => event.event === 'agent_start');
    const status = await request(troupe.url).get('/api/sse/status').expect(200);
    expect(status.body).toMatchObject({ active: 1, waiting: 0, totalServed: 2, cancellations: 1 });
    await waiting.ended;
    expect(waiting.events.at(-1)?.event).toBe('done');
    expect(provider.stats()).toMatchObject({ aborted: 1, completed: 1, inFlight: 0 });
  });

  test('a run whose client comes back within the grace is not cancelled', async () => {
    const provider = new SimProvider({ latencyMs: 1500, tokensPerSecond: 2000 });
    troupe = await startTestTroupe({ SSE_RESUME_GRACE_MS: '20000' }, { provider });
    const first = await openSse(`${troupe.url}/api/chat`, {
      body: { message: 'hello there', mode: 'single' },
    });
    await first.waitFor((event) => event.event === 'agent_start');
    first.abort();
    const runId = first.events[0].data.runId;
    const back = await openSse(`${troupe.url}/api/runs/${runId}/events`, {
      headers: { 'Last-Event-ID': String(first.events.at(-1)!.id) },
    });
    await back.ended;
    expect(back.events.at(-1)?.event).toBe('done');
    expect(provider.stats()).toMatchObject({ aborted: 0, completed: 1 });
    const status = await request(troupe.url).get('/api/sse/status').expect(200);
    expect(status.body).toMatchObject({ resumes: 1, cancellations: 0 });
  });

  test('an EventSource-style client resumes with Last-Event-ID and receives every later event exactly once', async () => {
    troupe = await startTestTroupe({
      SIM_LATENCY_MS: '20',
      SIM_TOKENS_PER_S: '150',
      SSE_RESUME_GRACE_MS: '30000',
    });
    const first = await openSse(`${troupe.url}/api/chat`, {
      body: { message: 'Plan a weekend of hiking near Geneva with a rest day in between' },
    });
    const runId: string = (await first.waitFor((event) => event.event === 'run')).data.runId;
    await waitUntil(() => first.events.filter((event) => event.event === 'delta').length >= 5, 20_000);
    first.abort();
    const before = [...first.events];
    const lastId = before.at(-1)!.id!;

    // Some events happen while nobody listens.
    const run = troupe.runs.get(runId)!;
    await waitUntil(() => run.events().at(-1)!.id > Number(lastId) + 3 || run.isFinished, 20_000);

    const resumed = await openSse(`${troupe.url}/api/runs/${runId}/events`, {
      headers: { 'Last-Event-ID': lastId },
    });
    expect(resumed.status).toBe(200);
    expect(resumed.headers['content-type']).toMatch(/^text\/event-stream/);
    await resumed.ended;
    expect(resumed.events.at(-1)?.event).toBe('done');

    const ids = [...before, ...resumed.events].map((event) => Number(event.id));
    const all = run.events().map((record) => record.id);
    expect(ids).toEqual(all);
    expect(new Set(ids).size).toBe(ids.length);
    expect(Number(resumed.events[0].id)).toBe(Number(lastId) + 1);
    // Same payloads as the server's log, not just the same ids.
    expect(resumed.events.map((event) => event.data)).toEqual(
      run
        .events()
        .filter((record) => record.id > Number(lastId))
        .map((record) => JSON.parse(JSON.stringify(record.data))),
    );

    // A finished run stays replayable from the start.
    const replay = await openSse(`${troupe.url}/api/runs/${runId}/events`);
    await replay.ended;
    expect(replay.events.map((event) => Number(event.id))).toEqual(all);
  });

  test('an unknown run is a 404 in the JSON error shape', async () => {
    troupe = await startTestTroupe();
    const response = await request(troupe.url).get('/api/runs/no-such-run/events').expect(404);
    expect(response.body.error.code).toBe('not_found');
  });

  test('a JSON chat whose client hangs up is cancelled at once, without a grace period', async () => {
    const provider = new SimProvider({ latencyMs: 10_000, tokensPerSecond: 2000 });
    troupe = await startTestTroupe({ SSE_RESUME_GRACE_MS: '600000' }, { provider });
    const server = troupe;
    const controller = new AbortController();
    const pending = fetch(`${server.url}/api/chat`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ message: 'never mind', mode: 'single' }),
      signal: controller.signal,
    }).catch(() => undefined);
    await waitUntil(() => provider.stats().inFlight === 1, 10_000);
    controller.abort();
    await pending;
    await waitUntil(() => provider.stats().aborted === 1, 10_000);
    const status = await request(server.url).get('/api/sse/status').expect(200);
    expect(status.body).toMatchObject({ active: 0, cancellations: 1 });
  });
});

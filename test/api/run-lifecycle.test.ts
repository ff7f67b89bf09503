import request from 'supertest';
import { SimProvider } from '../../api/llm/providers/sim-provider';
import { openSse } from '../helpers/sse-client';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';
import { waitUntil } from '../streaming/wait-until';

/**
 * What a run costs and how it ends when its client leaves, comes back, runs out of time, or
 * reconnects after the end (issue 9): departed clients cost at most the call in flight, the chat
 * deadline holds, and an EventSource stops cleanly.
 */
describe('a run and its client', () => {
  let troupe: TestTroupe | undefined;
  afterEach(async () => {
    await troupe?.stop();
    troupe = undefined;
  });

  test('a departed client (default grace) starts no new call until it is back, then resumes', async () => {
    const provider = new SimProvider({ latencyMs: 300, tokensPerSecond: 2000 });
    troupe = await startTestTroupe({}, { provider });
    const first = await openSse(`${troupe.url}/api/chat`, { body: { message: 'plan a trip to Kyoto' } });
    await first.waitFor((event) => event.event === 'agent_start');
    await waitUntil(() => provider.stats().inFlight === 1, 10_000);
    const runId = first.events[0].data.runId as string;
    first.abort();
    // The Host call in flight when the client left finishes; nothing else starts.
    await waitUntil(() => provider.stats().completed === 1, 10_000);
    await waitUntil(() => troupe!.scheduler.status().parked === 1, 10_000);
    expect(provider.stats()).toMatchObject({ started: 1, inFlight: 0 });
    expect(troupe.runs.get(runId)!.isFinished).toBe(false);

    // Back within the grace, from where it left off: the chat continues and finishes.
    const back = await openSse(`${troupe.url}/api/runs/${runId}/events`, {
      headers: { 'Last-Event-ID': String(first.events.at(-1)!.id) },
    });
    await back.ended;
    expect(back.events.at(-1)?.event).toBe('done');
    expect(provider.stats().started).toBeGreaterThanOrEqual(4);
    expect(troupe.scheduler.status().parked).toBe(0);
  });

  test('a client that never comes back costs only the call in flight, then the run is cancelled', async () => {
    const provider = new SimProvider({ latencyMs: 400, tokensPerSecond: 2000 });
    troupe = await startTestTroupe({ SSE_RESUME_GRACE_MS: '1500' }, { provider });
    const gone = await openSse(`${troupe.url}/api/chat`, { body: { message: 'a long plan, please' } });
    await gone.waitFor((event) => event.event === 'agent_start');
    await waitUntil(() => provider.stats().inFlight === 1, 10_000);
    const run = troupe.runs.get(gone.events[0].data.runId)!;
    gone.abort();
    const last = await run.finished;
    expect(last).toMatchObject({ event: 'error', data: { code: 'cancelled' } });
    expect(provider.stats().started).toBe(1);
    expect(troupe.scheduler.status()).toMatchObject({ queueLength: 0, parked: 0, admittedChats: 0 });
  });

  test('a chat past CHAT_TIMEOUT_MS ends with chat_timeout and its calls leave the queue', async () => {
    const provider = new SimProvider({ latencyMs: 700, tokensPerSecond: 2000 });
    troupe = await startTestTroupe({ CHAT_TIMEOUT_MS: '1200' }, { provider });
    const slow = await openSse(`${troupe.url}/api/chat`, { body: { message: 'four calls will not fit' } });
    await slow.ended;
    expect(slow.events.at(-1)).toMatchObject({ event: 'error', data: { code: 'chat_timeout' } });
    await waitUntil(() => provider.stats().inFlight === 0, 10_000);
    const status = await request(troupe.url).get('/api/queue/status').expect(200);
    expect(status.body.queue).toMatchObject({ queueLength: 0, activeRequests: 0 });
  });

  test('an EventSource reconnecting after done gets 204; to an expired run too; an unknown run is 404', async () => {
    troupe = await startTestTroupe({ RUN_LOG_RETENTION_MS: '300' });
    const chat = await openSse(`${troupe.url}/api/chat`, { body: { message: 'hello', mode: 'single' } });
    await chat.ended;
    const done = chat.events.at(-1)!;
    expect(done.event).toBe('done');
    const runId = chat.events[0].data.runId as string;
    await request(troupe.url)
      .get(`/api/runs/${runId}/events`)
      .set('Last-Event-ID', String(done.id))
      .expect(204);
    // From before the end, the rest is replayed and the stream closes.
    const replay = await openSse(`${troupe.url}/api/runs/${runId}/events`, {
      headers: { 'Last-Event-ID': '1' },
    });
    await replay.ended;
    expect(replay.events.at(-1)?.event).toBe('done');
    await waitUntil(() => troupe!.runs.get(runId) === undefined, 10_000);
    await request(troupe.url)
      .get(`/api/runs/${runId}/events`)
      .set('Last-Event-ID', String(done.id))
      .expect(204);
    const unknown = await request(troupe.url).get('/api/runs/no-such-run/events').expect(404);
    expect(unknown.body.error.code).toBe('not_found');
  });
});

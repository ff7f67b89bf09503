import request from 'supertest';
import { openSse, type SseStream } from '../helpers/sse-client';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';
import { waitUntil } from '../streaming/wait-until';

/** Opens a chat stream and waits for its `run` event, so chats arrive in a known order. */
async function openChat(
  troupe: TestTroupe,
  message: string,
  headers: Record<string, string> = {},
): Promise<SseStream> {
  const stream = await openSse(`${troupe.url}/api/chat`, { body: { message, mode: 'single' }, headers });
  expect(stream.status).toBe(200);
  await stream.waitFor((event) => event.event === 'run');
  return stream;
}

const isStarted = (event: { event: string }) => event.event === 'agent_start';

/** Follows runs inside the server and records the order in which they really start. */
function recordStarts(troupe: TestTroupe): { order: string[]; follow(runId: string): void } {
  const order: string[] = [];
  return {
    order,
    follow(runId) {
      let seen = false;
      troupe.runs.get(runId)!.subscribe((record) => {
        if (record.event === 'agent_start' && !seen) {
          seen = true;
          order.push(runId);
        }
      });
    },
  };
}

describe('SSE admission over real HTTP', () => {
  let troupe: TestTroupe | undefined;
  afterEach(async () => {
    await troupe?.stop();
    troupe = undefined;
  });

  test('with SSE_MAX_CONCURRENT=2, six chats: four wait with positions (estimates once measured), all six finish, started in arrival order', async () => {
    troupe = await startTestTroupe({
      SSE_MAX_CONCURRENT: '2',
      SIM_LATENCY_MS: '1000',
      SIM_TOKENS_PER_S: '2000',
    });
    const server = troupe;
    const starts = recordStarts(server);
    const streams: SseStream[] = [];
    for (let i = 1; i <= 6; i++) {
      const stream = await openChat(server, `Question number ${i} about trains`);
      streams.push(stream);
      starts.follow(stream.events[0].data.runId);
    }
    const runIds = streams.map((stream) => stream.events[0].data.runId as string);

    const status = await request(server.url).get('/api/sse/status').expect(200);
    expect(status.body).toMatchObject({ max: 2, active: 2, waiting: 4, openStreams: 6 });
    // Cold: the line has not moved yet, so no estimate is made up.
    expect(status.body.currentEstimatedWaitMs).toBeNull();

    await Promise.all(streams.map((stream) => stream.ended));
    for (const stream of streams) expect(stream.events.at(-1)?.event).toBe('done');

    // The first two were served at once; the other four were told their place first.
    for (const stream of streams.slice(0, 2))
      expect(stream.events.some((event) => event.event === 'queued')).toBe(false);
    const firstQueued = streams.slice(2).map((stream) => {
      const names = stream.events.map((event) => event.event);
      expect(names[0]).toBe('run');
      expect(names[1]).toBe('queued');
      // Every `queued` comes before the run starts.
      expect(names.lastIndexOf('queued')).toBeLessThan(names.findIndex((name) => name === 'agent_start'));
      return stream.events[1].data;
    });
    expect(firstQueued.map((data) => data.position)).toEqual([1, 2, 3, 4]);
    for (const data of firstQueued) {
      expect(data.estimatedWaitMs).toBeNull();
      expect(typeof data.token).toBe('string');
    }
    // Once two chats left the line its drain rate is measured: the last to wait heard an estimate.
    const lastTold = streams[5].events.filter((event) => event.event === 'queued').at(-1)?.data;
    expect(lastTold?.estimatedWaitMs).toEqual(expect.any(Number));
    expect(new Set(firstQueued.map((data) => data.token)).size).toBe(4);
    // Positions only go down while a chat waits.
    for (const stream of streams.slice(2)) {
      const positions = stream.events
        .filter((event) => event.event === 'queued')
        .map((event) => event.data.position);
      expect([...positions].sort((a, b) => b - a)).toEqual(positions);
    }

    expect(starts.order).toEqual(runIds);
    const after = await request(server.url).get('/api/sse/status').expect(200);
    expect(after.body).toMatchObject({ active: 0, waiting: 0, totalServed: 6, refused: 0, cancellations: 0 });
    expect(after.body.averageWaitMs).toBeGreaterThan(0);
  });

  test('past the waiting line bound a chat is refused before any stream: 503 and Retry-After', async () => {
    troupe = await startTestTroupe({ SSE_MAX_CONCURRENT: '1', SSE_QUEUE_MAX: '1', SIM_LATENCY_MS: '20000' });
    const running = await openChat(troupe, 'first');
    const waiting = await openChat(troupe, 'second');
    await waiting.waitFor((event) => event.event === 'queued');

    const refused = await request(troupe.url)
      .post('/api/chat')
      .set('Accept', 'text/event-stream')
      .send({ message: 'third' })
      .expect(503)
      .expect('Content-Type', /json/);
    expect(refused.body.error.code).toBe('overloaded');
    expect(refused.body.error.message).toMatch(/waiting line is full/);
    expect(refused.body.error.retryAfterMs).toBeGreaterThan(0);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);

    const status = await request(troupe.url).get('/api/sse/status').expect(200);
    expect(status.body).toMatchObject({ active: 1, waiting: 1, refused: 1 });
    running.abort();
    waiting.abort();
  });

  test('a waiting client that drops and comes back with X-Queue-Token keeps its run and its place', async () => {
    troupe = await startTestTroupe({
      SSE_MAX_CONCURRENT: '1',
      SIM_LATENCY_MS: '1500',
      SSE_TOKEN_GRACE_MS: '20000',
    });
    const starts = recordStarts(troupe);
    const first = await openChat(troupe, 'first');
    const second = await openChat(troupe, 'second', { 'X-User-Id': 'dana' });
    const third = await openChat(troupe, 'third');
    for (const stream of [first, second, third]) starts.follow(stream.events[0].data.runId);
    const queued = await second.waitFor((event) => event.event === 'queued');
    expect(queued.data.position).toBe(1);
    const runId = second.events[0].data.runId;

    second.abort();
    await second.ended;
    // Someone else's client cannot use the token: it gets a new chat of its own, at the end of the line.
    const stranger = await openChat(troupe, 'second', {
      'X-Queue-Token': queued.data.token,
      'X-User-Id': 'eve',
    });
    expect(stranger.events[0].data.runId).not.toBe(runId);
    expect((await stranger.waitFor((event) => event.event === 'queued')).data.position).toBe(3);
    stranger.abort();

    const back = await openSse(`${troupe.url}/api/chat`, {
      body: { message: 'second' },
      headers: { 'X-Queue-Token': queued.data.token, 'X-User-Id': 'dana' },
    });
    const run = await back.waitFor((event) => event.event === 'run');
    expect(run.data.runId).toBe(runId);
    const place = await back.waitFor((event) => event.event === 'queued');
    expect(place.data).toMatchObject({ position: 1, token: queued.data.token });

    await Promise.all([first.ended, back.ended, third.ended]);
    expect(back.events.at(-1)?.event).toBe('done');
    expect(third.events.at(-1)?.event).toBe('done');
    // It started in its original place: before the chat that arrived after it.
    expect(starts.order).toEqual([first, second, third].map((stream) => stream.events[0].data.runId));
    const status = await request(troupe.url).get('/api/sse/status').expect(200);
    expect(status.body.resumes).toBeGreaterThanOrEqual(1);
    expect(status.body.totalServed).toBeGreaterThanOrEqual(3);
  });

  test('heartbeats arrive on a waiting stream every SSE_HEARTBEAT_MS', async () => {
    troupe = await startTestTroupe({
      SSE_MAX_CONCURRENT: '1',
      SSE_HEARTBEAT_MS: '100',
      SIM_LATENCY_MS: '20000',
    });
    const running = await openChat(troupe, 'first');
    const openedAt = Date.now();
    const waiting = await openChat(troupe, 'second');
    await waiting.waitFor((event) => event.event === 'queued');
    await waitUntil(() => waiting.comments.filter((comment) => comment === 'ping').length >= 4, 10_000);
    // Four pings on one shared ticker take at least three full intervals.
    expect(Date.now() - openedAt).toBeGreaterThanOrEqual(290);
    expect(waiting.events.map((event) => event.event)).toEqual(['run', 'queued']);
    expect(running.comments.filter((comment) => comment === 'ping').length).toBeGreaterThanOrEqual(3);
    running.abort();
    waiting.abort();
  });

  test('shutdown ends waiting streams too, with shutting_down', async () => {
    const server = await startTestTroupe({
      SSE_MAX_CONCURRENT: '1',
      SIM_LATENCY_MS: '20000',
      // Durable chats would hand both over for the next start instead (test/durable/).
      DURABLE_CHATS: 'off',
    });
    const running = await openChat(server, 'first');
    const waiting = await openChat(server, 'second');
    await waiting.waitFor((event) => event.event === 'queued');
    await server.stop();
    await Promise.all([running.ended, waiting.ended]);
    for (const stream of [running, waiting]) {
      expect(stream.events.at(-1)).toMatchObject({ event: 'error', data: { code: 'shutting_down' } });
    }
    expect(waiting.events.some(isStarted)).toBe(false);
  });

  test('GET /api/sse/status reports the admission figures', async () => {
    troupe = await startTestTroupe({ SSE_MAX_CONCURRENT: '3' });
    const status = await request(troupe.url).get('/api/sse/status').expect(200);
    expect(status.body).toEqual({
      active: 0,
      max: 3,
      waiting: 0,
      totalServed: 0,
      averageWaitMs: 0,
      currentEstimatedWaitMs: 0,
      meanRunMs: null,
      resumes: 0,
      cancellations: 0,
      refused: 0,
      refusedWaiting: 0,
      openStreams: 0,
    });
  });
});

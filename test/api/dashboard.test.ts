import request from 'supertest';
import { MAX_DASHBOARD_VIEWERS } from '../../api/routes/dashboard';
import { openSse, type SseStream } from '../helpers/sse-client';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';

describe('the dashboard feed and the pages', () => {
  let troupe: TestTroupe;
  beforeAll(async () => {
    troupe = await startTestTroupe();
  });
  afterAll(() => troupe.stop());

  test("GET /api/dashboard/snapshot carries the status endpoints' bodies unchanged, and this instance as the only one", async () => {
    const { body } = await request(troupe.url).get('/api/dashboard/snapshot').expect(200);
    const queueStatus = (await request(troupe.url).get('/api/queue/status').expect(200)).body;
    const sseStatus = (await request(troupe.url).get('/api/sse/status').expect(200)).body;
    const toolSystemStatus = (await request(troupe.url).get('/api/tool-system/status').expect(200)).body;
    // Timestamps and the last minute's figures move between two requests; the field names may not.
    const shape = (value: unknown): unknown =>
      value !== null && typeof value === 'object'
        ? Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, shape(inner)]))
        : typeof value;
    expect(shape(body.queueStatus)).toEqual(shape(queueStatus));
    expect(shape(body.sseStatus)).toEqual(shape(sseStatus));
    expect(shape(body.toolSystemStatus)).toEqual(shape(toolSystemStatus));
    expect(body).toMatchObject({
      timestamp: expect.any(Number),
      queueMax: 5000,
      queueStatus: {
        status: 'running',
        queue: {
          queueLength: 0,
          activeRequests: 0,
          maxConcurrency: 50,
          maxRPM: 500,
          effective: { maxConcurrency: 50, maxRPM: 500 },
          cache: { cacheHitRate: '0%' },
          waitReasons: { now: null, waitingCalls: 0, lastMinute: { totalMs: 0 } },
        },
      },
      sseStatus: { active: 0, max: 200, waiting: 0, refused: 0 },
      toolSystemStatus: { tools: [{ name: 'search_web', circuit: 'closed', cacheHitRate: '0%' }] },
    });
    // One process: one row, itself, in the fields a cluster's registry publishes.
    expect(body.instances).toEqual([
      expect.objectContaining({
        id: body.answeredBy,
        pid: process.pid,
        paused: false,
        queueLength: 0,
        activeRequests: 0,
        limiter: 'local',
      }),
    ]);
    expect(queueStatus.instances).toBeUndefined();
  });

  test('/metrics exports the why-calls-wait figures by reason, as queue.waitReasons reports them', async () => {
    const metrics = (await request(troupe.url).get('/metrics').expect(200)).text;
    const status = (await request(troupe.url).get('/api/queue/status').expect(200)).body;
    expect(status.queue.waitReasons.now).toBeNull();
    for (const reason of Object.keys(status.queue.waitReasons.lastMinute.byReason)) {
      expect(metrics).toContain(`troupe_llm_waiting_calls{reason="${reason}"} 0`);
      expect(metrics).toContain(`troupe_llm_wait_last_minute_seconds{reason="${reason}"}`);
    }
  });

  test('GET /api/dashboard/events pushes a snapshot a second, bounded, and frees its place on disconnect', async () => {
    const first = await openSse(`${troupe.url}/api/dashboard/events`);
    expect(first.status).toBe(200);
    await first.waitFor((event) => event.event === 'snapshot');
    const before = first.events.length;
    await first.waitFor((_event) => first.events.length > before, 5000);
    const stamps = first.events.map((event) => event.data.timestamp as number);
    expect(stamps[stamps.length - 1]).toBeGreaterThan(stamps[0]);

    const others: SseStream[] = [];
    for (let index = 1; index < MAX_DASHBOARD_VIEWERS; index++) {
      others.push(await openSse(`${troupe.url}/api/dashboard/events`));
    }
    const refused = await request(troupe.url).get('/api/dashboard/events').expect(503);
    expect(refused.body.error.code).toBe('overloaded');
    expect(refused.headers['retry-after']).toBe('10');

    first.abort();
    // The server sees the close and gives the place back.
    let again: SseStream | undefined;
    for (let attempt = 0; attempt < 50 && again?.status !== 200; attempt++) {
      again?.abort();
      again = await openSse(`${troupe.url}/api/dashboard/events`);
      if (again.status !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(again?.status).toBe(200);
    for (const stream of [...others, again!]) stream.abort();
  });

  test('/ and /dashboard are HTML pages whose libraries are served locally', async () => {
    await request(troupe.url)
      .get('/')
      .expect(200)
      .expect('Content-Type', /html/)
      .expect(/chat\.js/);
    const dashboard = await request(troupe.url).get('/dashboard').expect(200).expect('Content-Type', /html/);
    expect(dashboard.text).not.toMatch(/https?:\/\//);
    await request(troupe.url)
      .get('/vendor/uplot/uPlot.esm.js')
      .expect(200)
      .expect('Content-Type', /javascript/);
    await request(troupe.url).get('/vendor/uplot/uPlot.min.css').expect(200);
    await request(troupe.url)
      .get('/vendor/eventsource-parser/index.js')
      .expect(200)
      .expect(/createParser/);
    await request(troupe.url).get('/assets/dashboard.js').expect(200);
  });
});

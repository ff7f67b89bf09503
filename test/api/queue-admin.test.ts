import request from 'supertest';
import { openSse } from '../helpers/sse-client';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';
import { eventually } from '../helpers/eventually';

const TOKEN = 'test-admin-token';

describe('queue monitoring and emergency controls', () => {
  let troupe: TestTroupe;
  beforeAll(async () => {
    // Admission off: every chat starts at once, so calls wait in the LLM queue for the operator's
    // controls to act on (with admission on they would wait in the chat line instead).
    troupe = await startTestTroupe({
      ADMIN_TOKEN: TOKEN,
      LLM_MAX_CONCURRENT: '1',
      SIM_LATENCY_MS: '400',
      LLM_ADMISSION: 'off',
    });
  });
  afterAll(() => troupe.stop());

  test('GET /api/queue/status has every field of the brief, plus paused and byAgent', async () => {
    const response = await request(troupe.url).get('/api/queue/status').expect(200);
    expect(response.body).toMatchObject({ status: 'running', timestamp: expect.any(Number) });
    expect(Math.abs(response.body.timestamp - Date.now())).toBeLessThan(60_000);
    for (const field of [
      'queueLength',
      'activeRequests',
      'totalProcessed',
      'totalSuccess',
      'totalFailed',
      'totalTimeout',
      'averageWaitTime',
      'averageProcessTime',
      'p95WaitTime',
      'p95ProcessTime',
      'currentRPM',
      'maxRPM',
      'currentConcurrency',
      'maxConcurrency',
      'utilizationRate',
      'paused',
      'byAgent',
      'effective',
    ]) {
      expect(response.body.queue).toHaveProperty(field);
    }
    expect(response.body.queue.utilizationRate).toMatch(/^\d+%$/);
    expect(Object.keys(response.body.queue.byAgent).sort()).toEqual([
      'critic',
      'host',
      'planner',
      'reporter',
    ]);
    expect(response.body.queue.maxConcurrency).toBe(1);
    expect(response.body.queue.maxRPM).toBe(500);
  });

  test('pause, resume and clear need the admin token', async () => {
    for (const [method, path] of [
      ['post', '/api/queue/pause'],
      ['post', '/api/queue/resume'],
      ['delete', '/api/queue/clear'],
    ] as const) {
      const missing = await request(troupe.url)[method](path).expect(401);
      expect(missing.body.error.code).toBe('unauthorized');
      expect(missing.body.error.message).toMatch(/ADMIN_TOKEN/);
      await request(troupe.url)[method](path).set('Authorization', 'Bearer wrong').expect(401);
    }
  });

  test('pause holds queued calls and new chats alike; resume lets them finish; refusing is explicit', async () => {
    const admin = { Authorization: `Bearer ${TOKEN}` };
    // One chat end to end first: the server is warm when the controls are tried.
    await request(troupe.url)
      .post('/api/chat')
      .set('Accept', 'application/json')
      .send({ message: 'warm', mode: 'single' })
      .expect(200);
    const running = await openSse(`${troupe.url}/api/chat`, {
      body: { message: 'in flight', mode: 'single' },
    });
    await running.waitFor((event) => event.event === 'agent_start');
    // One slot: this one waits in the queue behind the first.
    const held = await openSse(`${troupe.url}/api/chat`, {
      body: { message: 'held question', mode: 'single' },
    });
    await eventually(async () => {
      const response = await request(troupe.url).get('/api/queue/items').expect(200);
      return response.body.items.some((item: { state: string }) => item.state === 'queued')
        ? true
        : undefined;
    });
    await request(troupe.url).post('/api/queue/pause').set(admin).expect(200);

    // The call in flight finishes; the queued one stays queued.
    await running.ended;
    expect(running.events.at(-1)?.event).toBe('done');
    const items = await request(troupe.url).get('/api/queue/items').set(admin).expect(200);
    expect(items.body.redacted).toBe(false);
    expect(items.body.items).toEqual([
      expect.objectContaining({
        agentType: 'reporter',
        userId: 'anonymous',
        runId: held.events[0].data.runId,
        state: 'queued',
        waitedMs: expect.any(Number),
      }),
    ]);
    const status = await request(troupe.url).get('/api/queue/status').expect(200);
    expect(status.body).toMatchObject({
      status: 'paused',
      queue: { paused: true, activeRequests: 0, queueLength: 1 },
    });
    expect(held.events.some((event) => event.event === 'delta')).toBe(false);

    // A new chat is held too, not refused: it is told it waits for the pause to end.
    const arriving = await openSse(`${troupe.url}/api/chat`, {
      body: { message: 'while paused', mode: 'single' },
    });
    const notice = await arriving.waitFor((event) => event.event === 'queued');
    expect(notice.data).toMatchObject({ paused: true, estimatedWaitMs: null });

    // Refusing new chats meanwhile is the operator's explicit choice.
    await request(troupe.url).post('/api/queue/pause').set(admin).send({ refuseNewChats: true }).expect(200);
    const refused = await request(troupe.url).post('/api/chat').send({ message: 'refused' }).expect(503);
    expect(refused.body.error).toMatchObject({
      code: 'overloaded',
      message: expect.stringMatching(/paused/),
    });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);

    await request(troupe.url).post('/api/queue/resume').set(admin).expect(200);
    await held.ended;
    await arriving.ended;
    expect(held.events.at(-1)?.event).toBe('done');
    expect(arriving.events.at(-1)?.event).toBe('done');
  });

  test('clear fails every queued call with queue_cleared, which reaches its client', async () => {
    const first = await openSse(`${troupe.url}/api/chat`, { body: { message: 'first', mode: 'single' } });
    await first.waitFor((event) => event.event === 'agent_start');
    // With one slot, these two wait in the queue behind the first.
    const waiting = [
      await openSse(`${troupe.url}/api/chat`, { body: { message: 'second', mode: 'single' } }),
      await openSse(`${troupe.url}/api/chat`, { body: { message: 'third', mode: 'single' } }),
    ];
    await eventually(async () => {
      const response = await request(troupe.url).get('/api/queue/status').expect(200);
      return response.body.queue.queueLength >= 2 ? true : undefined;
    });
    const cleared = await request(troupe.url)
      .delete('/api/queue/clear')
      .set('Authorization', `Bearer ${TOKEN}`)
      .expect(200);
    expect(cleared.body.cleared).toBe(2);
    for (const stream of waiting) {
      await stream.ended;
      expect(stream.events.at(-1)).toMatchObject({ event: 'error', data: { code: 'queue_cleared' } });
    }
    await first.ended;
    expect(first.events.at(-1)?.event).toBe('done');
  });
});

describe('admin endpoints without ADMIN_TOKEN', () => {
  let troupe: TestTroupe;
  beforeAll(async () => {
    troupe = await startTestTroupe();
  });
  afterAll(() => troupe.stop());

  test('answer 403 naming ADMIN_TOKEN', async () => {
    const response = await request(troupe.url).post('/api/queue/pause').expect(403);
    expect(response.body.error).toEqual({ code: 'forbidden', message: expect.stringMatching(/ADMIN_TOKEN/) });
  });

  test('health answers in the brief shape, with liveness apart', async () => {
    const response = await request(troupe.url).get('/api/health').expect(200);
    expect(response.body).toMatchObject({
      status: 'healthy',
      services: { llmQueue: 'healthy', database: 'healthy', tools: 'healthy' },
      metrics: {
        activeUsers: 0,
        queueLength: 0,
        cpu: expect.stringMatching(/^\d+(\.\d)?%$/),
        memory: expect.stringMatching(/^\d+(\.\d)?%$/),
      },
      timestamp: expect.any(Number),
      details: {
        llmQueue: { circuit: 'closed', paused: false },
        database: { latencyMs: expect.any(Number) },
        tools: { search_web: 'healthy' },
        memory: { rssMB: expect.any(Number), limitMB: expect.any(Number) },
      },
    });
    await request(troupe.url)
      .get('/api/health/live')
      .expect(200, /"status":"ok"/);
  });

  test('health is unhealthy with 503 when the store cannot answer', async () => {
    const original = troupe.store.ping.bind(troupe.store);
    troupe.store.ping = () => Promise.reject(new Error('disk gone'));
    try {
      const response = await request(troupe.url).get('/api/health').expect(503);
      expect(response.body.status).toBe('unhealthy');
      expect(response.body.services.database).toBe('unhealthy');
      expect(response.body.details.database).toMatchObject({ error: 'disk gone' });
    } finally {
      troupe.store.ping = original;
    }
  });

  test('GET /metrics serves Prometheus text with the scheduler and tool series', async () => {
    await request(troupe.url)
      .post('/api/chat')
      .set('Accept', 'application/json')
      .send({ message: 'count me', mode: 'single' })
      .expect(200);
    const response = await request(troupe.url)
      .get('/metrics')
      .expect(200)
      .expect('Content-Type', /text\/plain/);
    expect(response.text).toMatch(/^troupe_llm_starts_total\{agent="reporter"\} [1-9]/m);
    expect(response.text).toMatch(/^troupe_llm_queue_length 0$/m);
    expect(response.text).toMatch(/^troupe_llm_wait_seconds_count\{agent="reporter"\} [1-9]/m);
    expect(response.text).toMatch(/^troupe_llm_effective_limit\{limit="rpm"\} 500$/m);
    expect(response.text).toMatch(/troupe_llm_provider_429_total/);
    expect(response.text).toMatch(/troupe_tool_circuit_open\{tool="search_web"\} 0/);
  });
});

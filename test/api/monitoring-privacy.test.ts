import { Writable } from 'node:stream';
import request from 'supertest';
import { createLogger } from '../../api/logger';
import { openSse } from '../helpers/sse-client';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';
import { eventually } from '../helpers/eventually';

const TOKEN = 'operator-secret';

/** A logger that keeps its JSON lines, to assert what never reaches a log. */
function capturingLogger(level = 'debug') {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return { logger: createLogger(level, destination), lines };
}

describe('monitoring shows no capabilities', () => {
  let troupe: TestTroupe;
  let lines: string[];

  beforeAll(async () => {
    const captured = capturingLogger();
    lines = captured.lines;
    troupe = await startTestTroupe(
      { ADMIN_TOKEN: TOKEN, LLM_MAX_CONCURRENT: '1', SIM_LATENCY_MS: '1500' },
      { logger: captured.logger },
    );
  });
  afterAll(() => troupe.stop());

  test('queue items show pseudonyms and no run id to strangers, full detail to the operator', async () => {
    const stream = await openSse(`${troupe.url}/api/chat`, {
      body: { message: 'my private question', mode: 'single' },
      headers: { 'X-User-Id': 'alice' },
    });
    const { runId, conversationId } = (await stream.waitFor((event) => event.event === 'run')).data;
    const publicView = await eventually(async () => {
      const response = await request(troupe.url).get('/api/queue/items').expect(200);
      return response.body.items.length > 0 ? response.body : undefined;
    });
    expect(publicView.redacted).toBe(true);
    const text = JSON.stringify(publicView);
    for (const secret of [runId, conversationId, 'alice', 'my private question'])
      expect(text).not.toContain(secret);
    expect(publicView.items[0]).toEqual({
      id: expect.any(Number),
      agentType: expect.any(String),
      userId: expect.stringMatching(/^u_[0-9a-f]{12}$/),
      conversationId: expect.stringMatching(/^c_[0-9a-f]{12}$/),
      state: expect.any(String),
      waitedMs: expect.any(Number),
    });
    // Stable within the process: the same user maps to the same pseudonym.
    const again = await request(troupe.url).get('/api/queue/items').expect(200);
    if (again.body.items.length > 0) expect(again.body.items[0].userId).toBe(publicView.items[0].userId);

    const operatorView = await request(troupe.url)
      .get('/api/queue/items')
      .set('Authorization', `Bearer ${TOKEN}`)
      .expect(200);
    if (operatorView.body.items.length > 0) {
      expect(operatorView.body.redacted).toBe(false);
      expect(operatorView.body.items[0]).toMatchObject({ userId: 'alice', conversationId, runId });
    }
    const wrong = await request(troupe.url)
      .get('/api/queue/items')
      .set('Authorization', 'Bearer nope')
      .expect(401);
    expect(wrong.body.error.code).toBe('unauthorized');
    await stream.ended;
  });

  test('the other monitoring views carry no user, conversation or run id', async () => {
    const stream = await openSse(`${troupe.url}/api/chat`, {
      body: { message: 'another private question', mode: 'single' },
      headers: { 'X-User-Id': 'bob' },
    });
    const { runId, conversationId } = (await stream.waitFor((event) => event.event === 'run')).data;
    for (const path of [
      '/api/queue/status',
      '/api/sse/status',
      '/api/health',
      '/api/tool-system/status',
      '/metrics',
    ]) {
      const response = await request(troupe.url).get(path);
      for (const secret of [runId, conversationId, '"bob"', 'another private question']) {
        expect(`${path}: ${response.text}`).not.toContain(secret);
      }
    }
    await stream.ended;
  });

  test('credentials never reach the log: access_token in URLs, Authorization headers', async () => {
    await request(troupe.url).get('/api/runs/unknown/events?access_token=sk-live-123&page=2').expect(404);
    await request(troupe.url).post('/api/queue/pause').set('Authorization', `Bearer ${TOKEN}`).expect(200);
    await request(troupe.url).post('/api/queue/resume').set('Authorization', `Bearer ${TOKEN}`).expect(200);
    const log = lines.join('\n');
    expect(log).toContain('access_token=[Redacted]');
    // Other query values are kept; only the credential is blanked.
    expect(log).toContain('page=2');
    expect(log).not.toContain('sk-live-123');
    expect(log).not.toContain(TOKEN);
  });
});

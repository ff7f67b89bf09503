import fc from 'fast-check';
import request from 'supertest';
import { ERROR_CODES } from '../../api/errors';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';

/**
 * fast-check fuzzing of every endpoint's input — paths, headers, query strings and bodies: whatever
 * arrives, the answer is never a 5xx, and every error is the JSON error shape with a registered code.
 */

const SAFE = /[A-Za-z0-9\-_.~%/]/;
/** Path text that includes broken percent-encoding, dot segments, NULs, non-ASCII and slashes. */
const pathText = fc
  .string({
    unit: fc.constantFrom(
      ...'ab-_.~%%0AEFz/'.split(''),
      '%E0',
      '%A4',
      '%00',
      '%zz',
      '..',
      'é',
      ' ',
      '\u0000',
      '中',
    ),
    maxLength: 40,
  })
  .map((text) => [...text].map((char) => (SAFE.test(char) ? char : encodeURIComponent(char))).join(''));

/** Header values an HTTP client can send (visible ASCII and spaces). */
const headerValue = fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code)),
  maxLength: 200,
});

const jsonValue = fc.jsonValue({ maxDepth: 3 });
const chatBody = fc.oneof(
  jsonValue,
  fc.record(
    {
      message: fc.oneof(
        fc.string({ maxLength: 50 }),
        fc.string({ unit: 'grapheme', maxLength: 20 }),
        jsonValue,
        fc.constant('\u0000 \u200b'),
      ),
      mode: fc.oneof(fc.constantFrom('multi_agent', 'single', 'MULTI', ''), jsonValue),
      conversationId: fc.oneof(fc.string({ maxLength: 140 }), jsonValue, fc.constant({ $gt: '' })),
      userId: fc.oneof(fc.string({ maxLength: 140 }), jsonValue),
    },
    { requiredKeys: [] },
  ),
);

function expectWellFormed(response: request.Response, what: string): void {
  if (response.status >= 500)
    throw new Error(`${what} answered ${response.status}: ${response.text.slice(0, 300)}`);
  if (response.status >= 400) {
    expect(response.headers['content-type']).toMatch(/application\/json/);
    expect(Object.keys(ERROR_CODES)).toContain(response.body?.error?.code);
    expect(typeof response.body.error.message).toBe('string');
  }
}

describe('fuzzing every endpoint (fast-check)', () => {
  let troupe: TestTroupe;
  jest.setTimeout(120_000);

  beforeAll(async () => {
    troupe = await startTestTroupe({
      ADMIN_TOKEN: 'fuzz-admin-token',
      SIM_LATENCY_MS: '1',
      SSE_MAX_CONCURRENT: '1000',
      LLM_MAX_CONCURRENT: '1000',
      LLM_MAX_RPM: '1000000',
      CRITIC_MAX_ROUNDS: '0',
      TOOL_MAX_ROUNDS: '0',
    });
  });
  afterAll(() => troupe.stop());

  test('POST /api/chat: any body, content type and headers', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          chatBody.map((body) => JSON.stringify(body)),
          fc.string({ maxLength: 100 }),
        ),
        fc.constantFrom(
          'application/json',
          'text/plain',
          'application/x-www-form-urlencoded',
          'application/json; charset=latin1',
        ),
        fc.option(headerValue),
        fc.option(headerValue),
        async (body, contentType, userId, token) => {
          let call = request(troupe.url)
            .post('/api/chat')
            .set('Accept', 'application/json')
            .set('Content-Type', contentType);
          if (userId !== null) call = call.set('X-User-Id', userId);
          if (token !== null) call = call.set('X-Queue-Token', token);
          expectWellFormed(await call.send(body), `POST /api/chat ${body}`);
        },
      ),
      { numRuns: 80 },
    );
  });

  test('GET /api/conversations/:id and /api/runs/:id/events: any path, user and query', async () => {
    await fc.assert(
      fc.asyncProperty(
        pathText,
        fc.constantFrom('conversations', 'runs'),
        fc.option(headerValue),
        fc.option(headerValue),
        async (id, area, userId, lastEventId) => {
          const path = area === 'runs' ? `/api/runs/${id}/events` : `/api/conversations/${id}`;
          let call = request(troupe.url).get(`${path}?lastEventId=${encodeURIComponent(lastEventId ?? '')}`);
          if (userId !== null) call = call.set('X-User-Id', userId);
          if (lastEventId !== null) call = call.set('Last-Event-ID', lastEventId);
          expectWellFormed(await call, `GET ${path}`);
        },
      ),
      { numRuns: 80 },
    );
  });

  test('monitoring and admin endpoints: any method, credentials and query', async () => {
    const endpoints: Array<['get' | 'post' | 'delete', string]> = [
      ['get', '/api/queue/status'],
      ['get', '/api/queue/items'],
      ['post', '/api/queue/pause'],
      ['post', '/api/queue/resume'],
      ['delete', '/api/queue/clear'],
      ['get', '/api/tool-system/status'],
      ['get', '/api/sse/status'],
      ['get', '/api/health'],
      ['get', '/api/health/live'],
      ['get', '/metrics'],
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...endpoints),
        fc.option(headerValue),
        pathText,
        jsonValue,
        async ([method, path], authorization, query, body) => {
          let call = request(troupe.url)[method](`${path}?${query}`);
          if (authorization !== null) call = call.set('Authorization', authorization);
          const response =
            method === 'get'
              ? await call
              : await call.set('Content-Type', 'application/json').send(JSON.stringify(body));
          expectWellFormed(response, `${method.toUpperCase()} ${path}`);
        },
      ),
      { numRuns: 80 },
    );
    // Nothing random ever matched the admin token: the queue was never paused or cleared.
    expect(troupe.scheduler.status().paused).toBe(false);
  });

  test('unknown paths and methods answer the JSON 404, whatever they look like', async () => {
    await fc.assert(
      fc.asyncProperty(
        pathText,
        fc.constantFrom('get', 'post', 'put', 'patch', 'delete'),
        async (path, method) => {
          expectWellFormed(await request(troupe.url)[method](`/${path}`), `${method} /${path}`);
        },
      ),
      { numRuns: 60 },
    );
  });
});

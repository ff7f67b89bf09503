import http from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { openSse } from '../helpers/sse-client';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';

describe('agents using tools in a streamed chat', () => {
  let troupe: TestTroupe;
  beforeAll(async () => {
    troupe = await startTestTroupe();
  });
  afterAll(() => troupe.stop());

  test('a request for recent facts shows tool_call and tool_result, and the answer uses the results', async () => {
    const stream = await openSse(`${troupe.url}/api/chat`, {
      body: { message: 'search the latest news about Volcengine Ark rate limits and summarise them' },
    });
    await stream.ended;
    const call = stream.events.find((event) => event.event === 'tool_call');
    expect(call?.data).toMatchObject({
      agent: 'planner',
      tool: 'search_web',
      args: { query: expect.stringMatching(/Ark/) },
    });
    const result = stream.events.find((event) => event.event === 'tool_result');
    expect(result?.data).toMatchObject({
      callId: call?.data.callId,
      tool: 'search_web',
      ok: true,
      cached: false,
    });
    const done = stream.events.at(-1)!;
    expect(done.event).toBe('done');
    expect(done.data.answer).toMatch(/Volcengine Ark/);

    // The same search again comes from the cache.
    const again = await openSse(`${troupe.url}/api/chat`, {
      body: { message: 'search the latest news about Volcengine Ark rate limits and summarise them' },
    });
    await again.ended;
    expect(again.events.find((event) => event.event === 'tool_result')?.data.cached).toBe(true);

    const status = await request(troupe.url).get('/api/tool-system/status').expect(200);
    expect(status.body.tools[0]).toMatchObject({ name: 'search_web', status: 'healthy', circuit: 'closed' });
    expect(parseFloat(status.body.tools[0].cacheHitRate)).toBeGreaterThan(0);
    expect(status.body.tools[0].cacheHitRate).toMatch(/%$/);
  });
});

describe('a failing search backend', () => {
  let backend: http.Server;
  let troupe: TestTroupe;

  beforeAll(async () => {
    // A real SearXNG stand-in that is down: every search answers 502.
    backend = http.createServer((_req, res) => {
      res.writeHead(502, { 'Content-Type': 'text/plain' }).end('bad gateway');
    });
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    const port = (backend.address() as AddressInfo).port;
    troupe = await startTestTroupe({ SEARCH_PROVIDER: 'searxng', SEARCH_URL: `http://127.0.0.1:${port}` });
  });
  afterAll(async () => {
    await troupe.stop();
    await new Promise((resolve) => backend.close(resolve));
  });

  test('chats still complete with a degraded answer while the tool fails', async () => {
    for (let index = 0; index < 6; index++) {
      const response = await request(troupe.url)
        .post('/api/chat')
        .set('Accept', 'application/json')
        .send({ message: `search the latest news number ${index} about provider outages`, mode: 'single' })
        .expect(200);
      expect(response.body.answer.length).toBeGreaterThan(0);
    }
    const status = await request(troupe.url).get('/api/tool-system/status').expect(200);
    const search = status.body.tools.find((tool: { name: string }) => tool.name === 'search_web');
    expect(parseFloat(search.errorRate)).toBeGreaterThan(0);
    expect(search.status).not.toBe('healthy');
    const health = await request(troupe.url).get('/api/health').expect(200);
    expect(health.body.status).toBe('degraded');
    expect(health.body.services.tools).not.toBe('healthy');
  });
});

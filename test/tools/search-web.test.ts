import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { testConfig } from '../../config';
import { createToolSystem } from '../../api/tools/create-tool-system';
import { OfflineSearch } from '../../api/tools/plugins/search-backends/offline-search';
import { SearxngSearch } from '../../api/tools/plugins/search-backends/searxng-search';
import { createSearchWebPlugin } from '../../api/tools/plugins/search-web';
import { ToolExecutor } from '../../api/tools/tool-executor';
import searxngResponse from './fixtures/searxng-response.json';
import { callContext, toolCall, waitFor } from './helpers';

/** A local stand-in for SearXNG: serves the fixture, or fails with 502 while `failing` is set. */
async function startFakeSearxng() {
  const state = { failing: false, requests: [] as string[] };
  const app = express();
  app.get('/search', (request, response) => {
    state.requests.push(request.originalUrl);
    if (state.failing) {
      response.status(502).send('Bad Gateway');
      return;
    }
    response.json({ ...searxngResponse, query: request.query.q });
  });
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    state,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const offline = new OfflineSearch();
const signal = () => new AbortController().signal;

describe('offline search backend', () => {
  it('finds the provider rate-limit notes for "Volcengine Ark rate limits"', async () => {
    const results = await offline.search('latest news about Volcengine Ark rate limits', {
      maxResults: 5,
      signal: signal(),
    });
    expect(results.length).toBeGreaterThanOrEqual(3);
    expect(results[0].title).toMatch(/Volcengine Ark/);
    expect(
      results.slice(0, 3).every((result) => /volcengine|ark/i.test(`${result.title} ${result.snippet}`)),
    ).toBe(true);
    for (const result of results) {
      expect(result.url).toBeTruthy();
      expect(result.snippet.length).toBeGreaterThan(20);
      expect(result.snippet.length).toBeLessThanOrEqual(330);
    }
  });

  it('indexes a corpus of several hundred real documents with their urls', async () => {
    expect(await offline.load()).toBeGreaterThan(300);
    const [express5] = await offline.search('express web framework', { maxResults: 1, signal: signal() });
    expect(express5.url).toBe('https://www.npmjs.com/package/express');
    const [readFile] = await offline.search('fs.readFile', { maxResults: 1, signal: signal() });
    expect(readFile.url).toMatch(/^https:\/\/nodejs\.org\/docs\/.*fs\.html#/);
  });

  it('returns nothing for a query of stop words only', async () => {
    expect(await offline.search('the latest news about', { maxResults: 5, signal: signal() })).toEqual([]);
  });

  const documents = Array.from({ length: 200 }, (_, index) => ({
    id: `doc-${index}`,
    title: `Document ${index} about ${index % 2 ? 'rate limits' : 'streaming'}`,
    url: `https://example.test/${index}`,
    text: `Text of document ${index}: quotas, retries and server-sent events.`,
    source: 'test',
    license: 'MIT',
  }));

  it('indexes in chunks: the event loop turns while a cold index is built', async () => {
    const cold = new OfflineSearch({ documents });
    let turns = 0;
    let counting = true;
    const count = () => {
      turns++;
      if (counting) setImmediate(count);
    };
    setImmediate(count);
    const results = await cold
      .search('rate limits', { maxResults: 3, signal: signal() })
      .finally(() => (counting = false));
    // All at once, the index would be built before a single turn (the search's first step).
    expect(turns).toBeGreaterThan(3);
    expect(results).toHaveLength(3);
    expect(results[0].title).toMatch(/rate limits/);
  });

  it('a search that comes while the index is built waits for it, and stops waiting when its signal aborts', async () => {
    const cold = new OfflineSearch({ documents });
    const loading = cold.load();
    const waiting = cold.search('streaming', { maxResults: 2, signal: signal() });
    const leaving = new AbortController();
    const left = cold.search('streaming', { maxResults: 2, signal: leaving.signal });
    leaving.abort(new Error('client left'));
    await expect(left).rejects.toThrow('client left');
    expect(await loading).toBe(200);
    expect((await waiting).map((result) => result.url)).toHaveLength(2);
  });

  it('a corpus that cannot be read fails the search, and the next one tries again', async () => {
    const missing = new OfflineSearch({ corpusFile: '/nonexistent/corpus.json' });
    await expect(missing.search('anything', { maxResults: 1, signal: signal() })).rejects.toThrow(
      'Search corpus not found',
    );
    await expect(missing.load()).rejects.toThrow('Search corpus not found');
  });
});

describe('SearXNG backend', () => {
  let searxng: Awaited<ReturnType<typeof startFakeSearxng>>;
  beforeEach(async () => {
    searxng = await startFakeSearxng();
  });
  afterEach(() => searxng.close());

  it('asks GET /search?q=…&format=json and maps the JSON results', async () => {
    const backend = new SearxngSearch({ baseUrl: searxng.url });
    const results = await backend.search('volcengine ark rate limit', { maxResults: 10, signal: signal() });
    expect(searxng.state.requests).toEqual(['/search?q=volcengine+ark+rate+limit&format=json']);
    expect(results).toEqual([
      {
        title: 'Rate limits - Ark - Volcengine',
        url: 'https://www.volcengine.com/docs/82379/1299000',
        snippet:
          'Model inference is limited by RPM and TPM per endpoint. Requests beyond the limit are answered with 429.',
      },
      {
        title: 'ModelArk quotas and limits',
        url: 'https://docs.byteplus.com/en/docs/ModelArk/1299000',
        snippet: 'BytePlus ModelArk applies RPM, TPM and inflight batch size limits.',
      },
      // No title: the url stands in; the result without a url is dropped.
      {
        title: 'https://github.com/volcengine/ark-examples/issues/1',
        url: 'https://github.com/volcengine/ark-examples/issues/1',
        snippet: '',
      },
    ]);
    expect(await backend.search('x', { maxResults: 1, signal: signal() })).toHaveLength(1);
  });

  it('fails on an HTTP error and stops when its signal aborts', async () => {
    const backend = new SearxngSearch({ baseUrl: `${searxng.url}/` });
    searxng.state.failing = true;
    await expect(backend.search('x', { maxResults: 5, signal: signal() })).rejects.toThrow(
      'SearXNG answered HTTP 502',
    );
    const controller = new AbortController();
    controller.abort();
    await expect(backend.search('x', { maxResults: 5, signal: controller.signal })).rejects.toThrow();
  });
});

describe('search_web against a failing SearXNG (circuit breaker)', () => {
  let searxng: Awaited<ReturnType<typeof startFakeSearxng>>;
  let executor: ToolExecutor;
  beforeEach(async () => {
    searxng = await startFakeSearxng();
  });
  afterEach(async () => {
    executor.close();
    await searxng.close();
  });

  const plugin = (withFallback: boolean) =>
    createSearchWebPlugin({
      backend: new SearxngSearch({ baseUrl: searxng.url }),
      fallbackBackend: withFallback ? offline : undefined,
      maxConcurrent: 10,
      maxPerMinute: 1000,
      cacheTtlSeconds: 0, // every call must reach the backend
      breaker: { errorThresholdPercentage: 50, volumeThreshold: 3, resetTimeout: 150 },
    });
  const search = (query = 'volcengine ark rate limits') =>
    executor.run(toolCall('search_web', { query }), callContext());
  const circuit = () => executor.status().tools[0].circuit;

  it('opens after repeated failures, fails fast with tool_unavailable, and closes once the backend recovers', async () => {
    executor = new ToolExecutor().register(plugin(false));
    expect((await search()).ok).toBe(true);

    searxng.state.failing = true;
    // One success and two failures: 3 calls (the volume threshold), 67 % failed (> 50 %).
    for (let index = 0; index < 2; index++) {
      const failed = await search();
      expect(failed).toMatchObject({ ok: false, errorCode: 'tool_failed' });
      expect(failed.content).toContain('SearXNG answered HTTP 502');
    }
    expect(circuit()).toBe('open');
    expect(executor.status().tools[0].status).toBe('unavailable');

    const requestsBefore = searxng.state.requests.length;
    const rejected = await search();
    expect(rejected).toMatchObject({ ok: false, errorCode: 'tool_unavailable' });
    expect(rejected.content).toContain('temporarily unavailable');
    expect(searxng.state.requests.length).toBe(requestsBefore); // failed fast: the backend was not asked

    searxng.state.failing = false;
    await waitFor(() => circuit() === 'half_open');
    expect(executor.status().tools[0].status).toBe('degraded');
    const probe = await search();
    expect(probe.ok).toBe(true);
    expect(JSON.parse(probe.content)).toMatchObject({ source: 'searxng', results: expect.any(Array) });
    expect(circuit()).toBe('closed');
    expect(executor.status().tools[0].status).not.toBe('unavailable');
  });

  it('serves degraded results from the offline corpus while SearXNG is down', async () => {
    executor = new ToolExecutor().register(plugin(true));
    searxng.state.failing = true;
    const outcomes = [];
    for (let index = 0; index < 5; index++) outcomes.push(await search());
    expect(circuit()).toBe('open');
    expect(searxng.state.requests).toHaveLength(3);
    for (const outcome of outcomes) {
      expect(outcome).toMatchObject({ ok: true, degraded: true, cached: false });
      const content = JSON.parse(outcome.content);
      expect(content.source).toBe('offline');
      expect(content.note).toMatch(/Live search is unavailable/);
      expect(content.results[0].title).toMatch(/Volcengine Ark/);
    }
    expect(executor.status().tools[0]).toMatchObject({
      status: 'degraded',
      circuit: 'open',
      successCalls: 0,
      errorRate: '100%',
    });

    searxng.state.failing = false;
    await waitFor(() => circuit() === 'half_open');
    const recovered = await search();
    expect(recovered.degraded).toBeUndefined();
    expect(JSON.parse(recovered.content).source).toBe('searxng');
    expect(circuit()).toBe('closed');
  });
});

describe('createToolSystem', () => {
  it('registers search_web on the offline corpus by default', async () => {
    const executor = createToolSystem(testConfig(), { offlineSearch: offline });
    try {
      expect(executor.definitions().map((definition) => definition.name)).toEqual(['search_web']);
      const [definition] = executor.definitions(['search_web']);
      expect(definition.parameters).toMatchObject({
        type: 'object',
        required: ['query'],
        properties: {
          query: { type: 'string', maxLength: 300 },
          maxResults: { type: 'integer', maximum: 10 },
        },
      });
      const call = { query: 'latest news about Volcengine Ark rate limits' };
      const first = await executor.run(toolCall('search_web', call), callContext());
      expect(first).toMatchObject({ ok: true, cached: false, tool: 'search_web' });
      const content = JSON.parse(first.content);
      expect(content).toMatchObject({ query: call.query, source: 'offline' });
      expect(content.results[0]).toEqual({
        title: expect.stringMatching(/Volcengine/),
        url: expect.any(String),
        snippet: expect.any(String),
      });
      // Case and spacing do not split the cache.
      const second = await executor.run(
        toolCall('search_web', { query: '  LATEST news about volcengine ark rate limits ' }),
        callContext(),
      );
      expect(second.cached).toBe(true);

      const bad = await executor.run(
        toolCall('search_web', { query: 'x'.repeat(301), maxResults: 0 }),
        callContext(),
      );
      expect(bad).toMatchObject({ ok: false, errorCode: 'invalid_arguments' });
      expect(bad.content).toMatch(/at query/);
      expect(bad.content).toMatch(/at maxResults/);

      expect(executor.status()).toEqual({
        tools: [
          {
            name: 'search_web',
            status: 'healthy',
            circuit: 'closed',
            totalCalls: 3,
            successCalls: 2,
            cacheHitRate: '33%',
            averageLatency: expect.any(Number),
            errorRate: '0%',
          },
        ],
      });
    } finally {
      executor.close();
    }
  });

  it('uses SearXNG when SEARCH_PROVIDER=searxng', async () => {
    const searxng = await startFakeSearxng();
    const executor = createToolSystem(testConfig({ SEARCH_PROVIDER: 'searxng', SEARCH_URL: searxng.url }), {
      offlineSearch: offline,
    });
    try {
      const outcome = await executor.run(
        toolCall('search_web', { query: 'ark limits', maxResults: 2 }),
        callContext(),
      );
      expect(outcome.ok).toBe(true);
      const content = JSON.parse(outcome.content);
      expect(content.source).toBe('searxng');
      expect(content.results).toHaveLength(2);
      expect(searxng.state.requests).toEqual(['/search?q=ark+limits&format=json']);
    } finally {
      executor.close();
      await searxng.close();
    }
  });
});

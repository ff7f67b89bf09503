import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { CRITIC_PROMPT, HOST_PROMPT, PLANNER_PROMPT, REPORTER_PROMPT } from '../../api/agents/prompts';
import {
  ProviderError,
  type CompletionOptions,
  type CompletionRequest,
  type CompletionResult,
  type Provider,
} from '../../api/llm/provider';
import { SimProvider } from '../../api/llm/providers/sim-provider';
import type { EndpointStatus } from '../../api/llm/routing/endpoint-status';
import { openSse, type SseStream } from '../helpers/sse-client';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';

/** Two simulated endpoints and the routes; the tests hand in each endpoint's provider. */
const ENDPOINTS = `
endpoints:
  - name: lite
    provider: sim
    maxConcurrent: 2
    maxRpm: 600
  - name: pro
    provider: sim
    maxConcurrent: 3
    maxRpm: 600
routes:
  host: [lite, pro]
  planner: [pro, lite]
  critic: [lite]
  reporter: [pro]
  default: [pro]
`;

const PROMPT_OF = new Map([
  [HOST_PROMPT, 'host'],
  [PLANNER_PROMPT, 'planner'],
  [CRITIC_PROMPT, 'critic'],
  [REPORTER_PROMPT, 'reporter'],
]);

/** Which agent sent a recorded request (its system prompt says). */
const agentOf = (request: CompletionRequest) => PROMPT_OF.get(request.messages[0]?.content) ?? 'other';

const sim = (fault?: (request: CompletionRequest, callNumber: number) => Error | undefined) =>
  new SimProvider({ latencyMs: 5, tokensPerSecond: 5000, record: true, fault });

/** Streams a few words, then fails like a provider dropping the connection mid-answer. */
class FailsAfterFirstToken implements Provider {
  readonly name = 'sim';
  calls = 0;
  async complete(_request: CompletionRequest, options: CompletionOptions): Promise<CompletionResult> {
    this.calls++;
    options.onDelta?.('Partial ');
    await new Promise((resolve) => setTimeout(resolve, 5));
    throw new ProviderError('server', 'upstream reset', { status: 502 });
  }
}

let fileDir: string;
let endpointsFile: string;
beforeAll(() => {
  fileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-endpoints-'));
  endpointsFile = path.join(fileDir, 'endpoints.yml');
  fs.writeFileSync(endpointsFile, ENDPOINTS);
});
afterAll(() => fs.rmSync(fileDir, { recursive: true, force: true }));

async function start(
  providers: Record<string, Provider>,
  env: Record<string, string> = {},
): Promise<TestTroupe> {
  return startTestTroupe(
    {
      LLM_ENDPOINTS_FILE: endpointsFile,
      LLM_CACHE: 'off',
      CRITIC_MAX_ROUNDS: '0',
      TOOL_MAX_ROUNDS: '0',
      ...env,
    },
    { providers },
  );
}

async function chat(troupe: TestTroupe, message: string, userId = 'ada'): Promise<SseStream> {
  const stream = await openSse(`${troupe.url}/api/chat`, {
    body: { message, mode: 'multi_agent' },
    headers: { 'X-User-Id': userId },
  });
  await stream.ended;
  return stream;
}

/** The routes with the Critic falling back to pro too (lite alone would fail it). */
function criticFallsBack(): string {
  const file = path.join(fileDir, 'critic-falls-back.yml');
  fs.writeFileSync(file, ENDPOINTS.replace('critic: [lite]', 'critic: [lite, pro]'));
  return file;
}

const terminal = (stream: SseStream) => stream.events[stream.events.length - 1];

async function endpointsOf(troupe: TestTroupe): Promise<EndpointStatus[]> {
  const response = await request(troupe.url).get('/api/queue/status').expect(200);
  return response.body.queue.endpoints;
}

describe('several endpoints: routes per agent, fallback, per-endpoint quotas', () => {
  let troupe: TestTroupe | undefined;
  afterEach(async () => {
    await troupe?.stop();
    troupe = undefined;
  });

  test("each agent's calls reach the first endpoint of its own route", async () => {
    const lite = sim();
    const pro = sim();
    troupe = await start({ lite, pro });
    const stream = await chat(troupe, 'Plan a small launch checklist for a web service');
    expect(terminal(stream).event).toBe('done');
    expect(new Set(lite.calls.map(agentOf))).toEqual(new Set(['host', 'critic']));
    expect(new Set(pro.calls.map(agentOf))).toEqual(new Set(['planner', 'reporter']));
    const endpoints = await endpointsOf(troupe);
    expect(endpoints.map((endpoint) => [endpoint.name, endpoint.model, endpoint.totalSuccess])).toEqual([
      ['lite', 'sim-lite', lite.calls.length],
      ['pro', 'sim-pro', pro.calls.length],
    ]);
    expect(endpoints[0].routes).toEqual(
      expect.arrayContaining([
        { agent: 'host', position: 1 },
        { agent: 'planner', position: 2 },
      ]),
    );
  });

  test('a 5xx before the first token falls back to the next endpoint: the user sees no error', async () => {
    const lite = sim(() => new ProviderError('server', 'Internal Service Error', { status: 500 }));
    const pro = sim();
    troupe = await start({ lite, pro }, { LLM_ENDPOINTS_FILE: criticFallsBack() });
    const stream = await chat(troupe, 'Summarise the trade-offs of caching API responses');
    expect(terminal(stream).event).toBe('done');
    // The host's call failed once at lite (no retry there: pro could take it) and pro answered it.
    expect(lite.calls.map(agentOf).filter((agent) => agent === 'host')).toHaveLength(1);
    expect(pro.calls.map(agentOf)).toEqual(expect.arrayContaining(['host', 'planner', 'reporter']));
    const [liteStatus, proStatus] = await endpointsOf(troupe);
    expect(liteStatus.fallbacks.left).toBeGreaterThanOrEqual(1);
    expect(proStatus.fallbacks.servedAsFallback).toBeGreaterThanOrEqual(1);
  });

  test('a 429 with a long Retry-After falls back, and later calls pass the held endpoint by', async () => {
    const lite = sim((_request, callNumber) =>
      callNumber === 1
        ? new ProviderError('rate_limited', 'RateLimitExceeded.EndpointRPMExceeded', {
            status: 429,
            retryAfterMs: 120_000,
          })
        : undefined,
    );
    const pro = sim();
    // No critic on lite alone: every agent here has pro to fall back to.
    fs.writeFileSync(
      path.join(fileDir, 'held.yml'),
      ENDPOINTS.replace('critic: [lite]', 'critic: [lite, pro]'),
    );
    troupe = await start(
      { lite, pro },
      { LLM_ENDPOINTS_FILE: path.join(fileDir, 'held.yml'), LLM_TIMEOUT: '30000' },
    );
    const first = await chat(troupe, 'Explain rolling windows for rate limits', 'ada');
    const second = await chat(troupe, 'Explain token buckets for rate limits', 'bob');
    expect(terminal(first).event).toBe('done');
    expect(terminal(second).event).toBe('done');
    // One call reached lite (the 429); every later lite-first call went to pro without waiting 120 s.
    expect(lite.calls).toHaveLength(1);
    const [liteStatus] = await endpointsOf(troupe);
    expect(liteStatus.rateLimited).toBe(1);
    expect(liteStatus.providerHoldMs).toBeGreaterThan(60_000);
    expect(liteStatus.fallbacks).toMatchObject({ left: 1 });
    expect(liteStatus.fallbacks.skipped).toBeGreaterThanOrEqual(2);
  });

  test("an endpoint whose breaker is open is skipped; the route's next endpoint serves at once", async () => {
    const lite = sim(() => new ProviderError('server', 'Internal Service Error', { status: 503 }));
    const pro = sim();
    fs.writeFileSync(
      path.join(fileDir, 'open.yml'),
      ENDPOINTS.replace('critic: [lite]', 'critic: [lite, pro]'),
    );
    troupe = await start({ lite, pro }, { LLM_ENDPOINTS_FILE: path.join(fileDir, 'open.yml') });
    // The breaker opens after 5 failures (its volume threshold); each chat sends two calls to lite.
    for (let index = 0; index < 4; index++) {
      expect(
        terminal(await chat(troupe, `question number ${index} about queues`, `user${index}`)).event,
      ).toBe('done');
    }
    const [liteStatus] = await endpointsOf(troupe);
    expect(liteStatus.breaker).toBe('open');
    const callsBefore = lite.calls.length;
    expect(terminal(await chat(troupe, 'one more question about queues', 'zoe')).event).toBe('done');
    expect(lite.calls.length).toBe(callsBefore);
    const [after] = await endpointsOf(troupe);
    expect(after.fallbacks.skipped).toBeGreaterThan(liteStatus.fallbacks.skipped);
    // The sum's breaker is not open: one endpoint still serves (health degraded, not unhealthy).
    const status = await request(troupe.url).get('/api/queue/status').expect(200);
    expect(status.body.queue.breaker).toBe('half_open');
  });

  test('no fallback after the first token: the stream ends with a coded error', async () => {
    const lite = new FailsAfterFirstToken();
    const pro = sim();
    troupe = await start({ lite, pro });
    const stream = await chat(troupe, 'Tell me about circuit breakers');
    const end = terminal(stream);
    expect(end.event).toBe('error');
    expect(end.data.code).toBe('llm_unavailable');
    expect(stream.events.some((event) => event.event === 'delta' && event.data.text === 'Partial ')).toBe(
      true,
    );
    // The host's call reached lite once, streamed, failed; pro never saw it (it would repeat text).
    expect(lite.calls).toBe(1);
    expect(pro.calls.map(agentOf)).not.toContain('host');
  });

  test("many chats at once: neither endpoint's concurrency limit is ever exceeded", async () => {
    const lite = new SimProvider({ latencyMs: 30, tokensPerSecond: 2000 });
    const pro = new SimProvider({ latencyMs: 30, tokensPerSecond: 2000 });
    troupe = await start({ lite, pro });
    const streams = await Promise.all(
      Array.from({ length: 12 }, (_unused, index) =>
        chat(troupe!, `parallel question ${index}`, `user${index}`),
      ),
    );
    expect(streams.map((stream) => terminal(stream).event)).toEqual(Array(12).fill('done'));
    expect(lite.stats().maxInFlight).toBeLessThanOrEqual(2);
    expect(pro.stats().maxInFlight).toBeLessThanOrEqual(3);
    expect(lite.stats().completed + pro.stats().completed).toBeGreaterThanOrEqual(48);
  });

  test('/metrics labels each endpoint; the sum keeps the existing fields', async () => {
    troupe = await start({ lite: sim(), pro: sim() });
    expect(terminal(await chat(troupe, 'A question for the metrics')).event).toBe('done');
    const metrics = (await request(troupe.url).get('/metrics').expect(200)).text;
    expect(metrics).toMatch(/^troupe_llm_endpoint_breaker_open\{endpoint="lite"\} 0$/m);
    expect(metrics).toMatch(/^troupe_llm_endpoint_limit\{endpoint="pro",limit="concurrency"\} 3$/m);
    expect(metrics).toMatch(
      /^troupe_llm_endpoint_outcomes_total\{endpoint="lite",outcome="success"\} [1-9]/m,
    );
    const status = (await request(troupe.url).get('/api/queue/status').expect(200)).body.queue;
    expect(status.maxConcurrency).toBe(5);
    expect(status.maxRPM).toBe(1200);
    expect(status.totalSuccess).toBe(
      status.endpoints.reduce((sum: number, endpoint: EndpointStatus) => sum + endpoint.totalSuccess, 0),
    );
  });
});

describe('sim endpoints from the file alone', () => {
  test('two embedded simulators, each at its own speed, answer a chat with no provider handed in', async () => {
    const troupe = await startTestTroupe({
      LLM_ENDPOINTS_FILE: endpointsFile,
      LLM_CACHE: 'off',
      CRITIC_MAX_ROUNDS: '0',
      TOOL_MAX_ROUNDS: '0',
    });
    try {
      expect(troupe.router.list().map((endpoint) => [endpoint.config.name, endpoint.provider.name])).toEqual([
        ['lite', 'sim'],
        ['pro', 'sim'],
      ]);
      const stream = await chat(troupe as TestTroupe, 'A question for two simulators');
      expect(terminal(stream).event).toBe('done');
      const endpoints = await endpointsOf(troupe as TestTroupe);
      expect(endpoints.every((endpoint) => endpoint.totalSuccess > 0)).toBe(true);
    } finally {
      await troupe.stop();
    }
  });
});

describe('without LLM_ENDPOINTS_FILE', () => {
  test('one endpoint `default` whose figures are the status itself', async () => {
    const troupe = await startTestTroupe({ LLM_MAX_CONCURRENT: '7', LLM_MAX_RPM: '70' });
    try {
      const status = (await request(troupe.url).get('/api/queue/status').expect(200)).body.queue;
      expect(status.endpoints).toEqual([
        expect.objectContaining({
          name: 'default',
          model: 'sim',
          maxConcurrency: 7,
          maxRPM: 70,
          breaker: 'closed',
        }),
      ]);
      expect(status.maxConcurrency).toBe(7);
    } finally {
      await troupe.stop();
    }
  });
});

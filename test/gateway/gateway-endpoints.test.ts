import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { ProviderError, type CompletionRequest } from '../../api/llm/provider';
import { SimProvider } from '../../api/llm/providers/sim-provider';
import type { EndpointStatus } from '../../api/llm/routing/endpoint-status';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';
import { parseDataBlocks, streamedContent } from './sse-chunks';

/** Two simulated models; `backup` serves the same model as `pro` (a second pool of it). */
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
  - name: backup
    provider: sim
    model: sim-pro
    maxConcurrent: 3
    maxRpm: 600
routes:
  default: [pro]
`;

const sim = (fault?: (request: CompletionRequest, callNumber: number) => Error | undefined) =>
  new SimProvider({ latencyMs: 5, tokensPerSecond: 5000, record: true, fault });

const failing = () => sim(() => new ProviderError('server', 'Internal Service Error', { status: 500 }));

const ask = (model: string) => ({ model, messages: [{ role: 'user', content: 'Say hello about tea' }] });

let fileDir: string;
let endpointsFile: string;
beforeAll(() => {
  fileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-v1-endpoints-'));
  endpointsFile = path.join(fileDir, 'endpoints.yml');
  fs.writeFileSync(endpointsFile, ENDPOINTS);
});
afterAll(() => fs.rmSync(fileDir, { recursive: true, force: true }));

async function endpointsOf(troupe: TestTroupe): Promise<Record<string, EndpointStatus>> {
  const response = await request(troupe.url).get('/api/queue/status').expect(200);
  const endpoints: EndpointStatus[] = response.body.queue.endpoints;
  return Object.fromEntries(endpoints.map((endpoint) => [endpoint.name, endpoint]));
}

describe('/v1 with an endpoints file: a model names its endpoints', () => {
  let troupe: TestTroupe | undefined;
  afterEach(async () => {
    await troupe?.stop();
    troupe = undefined;
  });

  test("GET /v1/models lists each endpoint's model once, and troupe", async () => {
    troupe = await startTestTroupe(
      { LLM_ENDPOINTS_FILE: endpointsFile, LLM_CACHE: 'off' },
      { providers: { lite: sim(), pro: sim(), backup: sim() } },
    );
    const response = await request(troupe.url).get('/v1/models').expect(200);
    expect(response.body.data.map((model: { id: string }) => model.id)).toEqual([
      'sim-lite',
      'sim-pro',
      'troupe',
    ]);
  });

  test("a call for each model reaches that model's endpoint, counted in its status", async () => {
    const lite = sim();
    const pro = sim();
    const backup = sim();
    troupe = await startTestTroupe(
      { LLM_ENDPOINTS_FILE: endpointsFile, LLM_CACHE: 'off' },
      { providers: { lite, pro, backup } },
    );
    const toLite = await request(troupe.url).post('/v1/chat/completions').send(ask('sim-lite')).expect(200);
    expect(toLite.body.model).toBe('sim-lite');
    let endpoints = await endpointsOf(troupe);
    expect([lite.calls.length, pro.calls.length, backup.calls.length]).toEqual([1, 0, 0]);
    expect(endpoints.lite.totalSuccess).toBe(1);
    expect(endpoints.pro.totalSuccess).toBe(0);

    const streamed = await fetch(`${troupe.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...ask('sim-pro'), stream: true }),
    });
    expect(streamed.status).toBe(200);
    expect(streamedContent(parseDataBlocks(await streamed.text())).length).toBeGreaterThan(0);
    endpoints = await endpointsOf(troupe);
    // The model's first endpoint in the file's order; the other agents' routes play no part.
    expect([lite.calls.length, pro.calls.length, backup.calls.length]).toEqual([1, 1, 0]);
    expect([endpoints.lite.totalSuccess, endpoints.pro.totalSuccess]).toEqual([1, 1]);

    // An endpoint's name picks that endpoint alone.
    await request(troupe.url).post('/v1/chat/completions').send(ask('backup')).expect(200);
    endpoints = await endpointsOf(troupe);
    expect([lite.calls.length, pro.calls.length, backup.calls.length]).toEqual([1, 1, 1]);
    expect(endpoints.backup.totalSuccess).toBe(1);
  });

  test('a model no endpoint serves is 404, and reaches no endpoint', async () => {
    const lite = sim();
    const pro = sim();
    troupe = await startTestTroupe(
      { LLM_ENDPOINTS_FILE: endpointsFile, LLM_CACHE: 'off' },
      { providers: { lite, pro, backup: sim() } },
    );
    for (const model of ['gpt-4o', 'sim', 'default']) {
      const response = await request(troupe.url).post('/v1/chat/completions').send(ask(model)).expect(404);
      expect(response.body.error).toMatchObject({ type: 'invalid_request_error', code: 'not_found' });
    }
    expect(lite.calls.length + pro.calls.length).toBe(0);
  });

  test('a failing endpoint falls back to another of the same model, never to another model', async () => {
    const lite = failing();
    const pro = failing();
    const backup = sim();
    troupe = await startTestTroupe(
      { LLM_ENDPOINTS_FILE: endpointsFile, LLM_CACHE: 'off' },
      { providers: { lite, pro, backup } },
    );
    // sim-pro: pro fails before its first token, backup (same model) answers.
    await request(troupe.url).post('/v1/chat/completions').send(ask('sim-pro')).expect(200);
    expect(pro.calls.length).toBeGreaterThan(0);
    expect(backup.calls.length).toBe(1);
    const endpoints = await endpointsOf(troupe);
    expect(endpoints.pro.fallbacks.left).toBe(1);
    expect(endpoints.backup.fallbacks.servedAsFallback).toBe(1);

    // sim-lite: lite is its only endpoint; the caller gets the error, not another model's answer.
    const response = await request(troupe.url).post('/v1/chat/completions').send(ask('sim-lite'));
    expect(response.status).toBeGreaterThanOrEqual(500);
    expect(response.body.error.message).toEqual(expect.any(String));
    expect(lite.calls.length).toBeGreaterThan(0);
    expect(backup.calls.length).toBe(1);
  });
});

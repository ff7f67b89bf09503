import http from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { openSse, type SseStream } from '../helpers/sse-client';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';

/**
 * How Troupe behaves toward one real (HTTP) endpoint on its worst days, through the public API:
 * a used-up quota costs one provider call, not four per chat, and health says why; a provider that
 * accepts connections and never answers is found within the first-byte timeout and health says
 * so at once.
 */

interface FakeEndpoint {
  baseUrl: string;
  requests: number;
  close(): Promise<void>;
}

/** A local HTTP server standing in for the provider: `answer` handles each request (or never does). */
async function fakeEndpoint(answer: (response: http.ServerResponse) => void): Promise<FakeEndpoint> {
  const sockets = new Set<import('node:net').Socket>();
  const endpoint: FakeEndpoint = { baseUrl: '', requests: 0, close: async () => undefined };
  const server = http.createServer((incoming, response) => {
    incoming.resume();
    incoming.on('end', () => {
      endpoint.requests++;
      answer(response);
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint.baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v3`;
  endpoint.close = () => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return endpoint;
}

async function chat(troupe: TestTroupe, message: string): Promise<SseStream> {
  const stream = await openSse(`${troupe.url}/api/chat`, { body: { message } });
  await stream.ended;
  return stream;
}

describe('a provider whose quota is used up (Ark QuotaExceeded)', () => {
  let endpoint: FakeEndpoint;
  let troupe: TestTroupe;

  beforeAll(async () => {
    endpoint = await fakeEndpoint((response) => {
      response.writeHead(429, { 'content-type': 'application/json', 'x-request-id': '2024-quota' });
      response.end(
        JSON.stringify({
          error: {
            code: 'QuotaExceeded',
            message: 'The request failed because you have exceeded your usage quota. Request id: 2024-quota',
            param: '',
            type: 'TooManyRequests',
          },
        }),
      );
    });
    troupe = await startTestTroupe({
      LLM_PROVIDER: 'openai',
      LLM_BASE_URL: endpoint.baseUrl,
      LLM_MODEL: 'ep-20250101-quota',
    });
  });

  afterAll(async () => {
    await troupe.stop();
    await endpoint.close();
  });

  it('twelve chats cost one provider request and each ends with provider_quota_exhausted', async () => {
    for (let index = 0; index < 12; index++) {
      const stream = await chat(troupe, `question ${index}`);
      const last = stream.events.at(-1)!;
      expect(last.event).toBe('error');
      expect(last.data.code).toBe('provider_quota_exhausted');
      expect(last.data.message).toMatch(/QuotaExceeded/);
      // Later chats fail at the open breaker, which knows when it probes again.
      if (index > 0) expect(last.data.retryAfterMs).toBeGreaterThan(0);
    }
    expect(endpoint.requests).toBe(1);
  });

  it('health says unhealthy with the reason, and stays so (no flip back to healthy)', async () => {
    for (let check = 0; check < 2; check++) {
      const health = await request(troupe.url).get('/api/health').expect(503);
      expect(health.body.services.llmQueue).toBe('unhealthy');
      expect(health.body.details.llmQueue).toMatchObject({
        circuit: 'open',
        unavailable: { reason: 'quota_exhausted', providerCode: 'QuotaExceeded' },
      });
    }
    const status = await request(troupe.url).get('/api/queue/status').expect(200);
    expect(status.body.queue.unavailable).toMatchObject({ reason: 'quota_exhausted' });
    const metrics = await request(troupe.url).get('/metrics').expect(200);
    expect(metrics.text).toMatch(/troupe_llm_provider_unavailable\{reason="quota_exhausted"\} 1/);
    expect(metrics.text).toMatch(/troupe_llm_provider_refusals_total\{reason="quota_exhausted"\} 1/);
  });
});

describe('a provider that accepts connections and never answers', () => {
  let endpoint: FakeEndpoint;
  let troupe: TestTroupe;

  beforeAll(async () => {
    endpoint = await fakeEndpoint(() => undefined);
    troupe = await startTestTroupe({
      LLM_PROVIDER: 'openai',
      LLM_BASE_URL: endpoint.baseUrl,
      LLM_MODEL: 'ep-hangs',
      LLM_FIRST_BYTE_TIMEOUT_MS: '400',
      LLM_FIRST_BYTE_TIMEOUT_FLOOR_MS: '200',
      CHAT_TIMEOUT_MS: '120000',
      LLM_TIMEOUT: '120000',
    });
  });

  afterAll(async () => {
    await troupe.stop();
    await endpoint.close();
  });

  it('the chat ends with llm_timeout naming the first-byte timeout, and health is degraded at once', async () => {
    const stream = await chat(troupe, 'hello');
    const last = stream.events.at(-1)!;
    expect(last.event).toBe('error');
    expect(last.data.code).toBe('llm_timeout');
    expect(last.data.message).toMatch(/no byte within 400 ms/);
    // One request: a hang is not retried on the same endpoint.
    expect(endpoint.requests).toBe(1);
    const health = await request(troupe.url).get('/api/health');
    expect(health.body.services.llmQueue).toBe('degraded');
    expect(health.body.details.llmQueue.recentFailure.message).toMatch(/first-byte timeout/);
  });
});

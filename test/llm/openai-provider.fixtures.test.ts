import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { ChatMessage, CompletionRequest } from '../../api/llm/provider';
import { ProviderError } from '../../api/llm/provider';
import { OpenAIProvider, toOpenAIMessages } from '../../api/llm/providers/openai-provider';

/**
 * The adapter against recorded-format responses of real providers (test/fixtures/llm), served by a
 * tiny local HTTP server. The request's `model` names the fixture to answer with.
 */

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'llm');

interface Fixture {
  status: number;
  file: string;
  headers?: Record<string, string>;
}

const ROUTES: Record<string, Fixture> = {
  'openai-text': { status: 200, file: 'openai-stream-text.sse' },
  'openai-tools': { status: 200, file: 'openai-stream-tool-calls.sse' },
  'openai-error-midway': { status: 200, file: 'openai-stream-error-midway.sse' },
  'openai-truncated': { status: 200, file: 'openai-stream-truncated.sse' },
  'ark-text': { status: 200, file: 'ark-stream-text.sse' },
  'ark-tool': { status: 200, file: 'ark-stream-tool-call.sse' },
  'ark-429-rpm': { status: 429, file: 'ark-429-endpoint-rpm.json' },
  'ark-429-tpm-on-400': { status: 400, file: 'ark-429-account-tpm.json' },
  'ark-overloaded-429': { status: 429, file: 'ark-server-overloaded.json' },
  'ark-overloaded-503': { status: 503, file: 'ark-server-overloaded.json', headers: { 'retry-after': '3' } },
  'openai-429': {
    status: 429,
    file: 'openai-429-rate-limit.json',
    headers: { 'retry-after-ms': '120', 'retry-after': '1', 'x-ratelimit-remaining-requests': '0' },
  },
  'openai-429-date': {
    status: 429,
    file: 'openai-429-rate-limit.json',
    headers: { 'retry-after': 'Mon, 10 Mar 2025 12:00:05 GMT' },
  },
  'openai-quota': { status: 429, file: 'openai-429-insufficient-quota.json' },
  'openai-401': { status: 401, file: 'openai-401.json' },
  'openai-403': { status: 403, file: 'openai-401.json' },
  'openai-400': { status: 400, file: 'openai-400-context-length.json' },
  'openai-404': { status: 404, file: 'openai-400-context-length.json' },
  'openai-500': { status: 500, file: 'openai-500.json' },
};

let server: http.Server;
let baseUrl: string;
const received: { url: string; authorization?: string; body: Record<string, unknown> }[] = [];

beforeAll(async () => {
  server = http.createServer((request, response) => {
    let raw = '';
    request.setEncoding('utf8');
    request.on('data', (part: string) => (raw += part));
    request.on('end', () => {
      const body = JSON.parse(raw) as Record<string, unknown>;
      received.push({ url: request.url ?? '', authorization: request.headers.authorization, body });
      const fixture = ROUTES[String(body.model)];
      const isStream = fixture.file.endsWith('.sse');
      response.writeHead(fixture.status, {
        'content-type': isStream ? 'text/event-stream; charset=utf-8' : 'application/json',
        ...fixture.headers,
      });
      response.end(fs.readFileSync(path.join(FIXTURES, fixture.file)));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const REQUEST: CompletionRequest = { messages: [{ role: 'user', content: 'hi' }] };

function call(model: string, request: CompletionRequest = REQUEST, onDelta?: (text: string) => void) {
  // Retry-After dates are wall time: the provider reads the wall clock, not the scheduler's.
  const provider = new OpenAIProvider({
    baseUrl: `${baseUrl}/api/v3`,
    apiKey: 'ark-key',
    model,
    maxOutputTokens: 256,
    wallNow: () => Date.parse('2025-03-10T12:00:00Z'),
  });
  return provider.complete(request, { signal: new AbortController().signal, onDelta });
}

async function failure(model: string): Promise<ProviderError> {
  const error = await call(model).then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(ProviderError);
  return error as ProviderError;
}

describe('OpenAIProvider with recorded OpenAI responses', () => {
  it('streams text and reads the include_usage chunk', async () => {
    const deltas: string[] = [];
    const result = await call('openai-text', REQUEST, (text) => deltas.push(text));
    expect(result).toEqual({
      text: 'Rate limits protect the service from overload. Back off when you see a 429.',
      toolCalls: [],
      usage: { promptTokens: 24, completionTokens: 17 },
      finishReason: 'stop',
    });
    expect(deltas).toHaveLength(17);
    const sent = received.at(-1)!;
    expect(sent.url).toBe('/api/v3/chat/completions');
    expect(sent.authorization).toBe('Bearer ark-key');
    expect(sent.body).toMatchObject({
      model: 'openai-text',
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 256,
    });
  });

  it('assembles two parallel tool calls from their deltas', async () => {
    const result = await call('openai-tools');
    expect(result.finishReason).toBe('tool_calls');
    expect(result.text).toBe('');
    expect(result.toolCalls).toEqual([
      {
        id: 'call_DdmO9pD3xa9XTPNJ32zg2hcA',
        name: 'search_web',
        arguments: '{"query": "Volcengine Ark rate limits"}',
      },
      {
        id: 'call_ABQ8fvbqrkbzjWRdHg8Dkg9Z',
        name: 'search_web',
        arguments: '{"query": "OpenAI 429 retry-after"}',
      },
    ]);
    expect(result.usage).toEqual({ promptTokens: 88, completionTokens: 52 });
  });

  it('an error event mid-stream fails the call (after the text already delivered)', async () => {
    const deltas: string[] = [];
    const error = await call('openai-error-midway', REQUEST, (text) => deltas.push(text)).catch(
      (value: unknown) => value,
    );
    expect(deltas.join('')).toBe('Partial answer');
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ kind: 'server' });
  });

  it('a stream cut off without finish_reason is a failure, never a clean answer', async () => {
    const error = await call('openai-truncated').catch((value: unknown) => value);
    expect(error).toMatchObject({ kind: 'network' });
    expect((error as Error).message).toMatch(/ended before the model finished/);
  });

  it('maps a 429 with retry-after-ms, and with an HTTP-date retry-after', async () => {
    const error = await failure('openai-429');
    expect(error).toMatchObject({ kind: 'rate_limited', retryAfterMs: 120 });
    expect(error.options).toMatchObject({ status: 429, providerCode: 'rate_limit_exceeded' });
    expect((await failure('openai-429-date')).retryAfterMs).toBe(5000);
  });

  it('reads an HTTP-date Retry-After against the wall clock by default, not a monotonic one', async () => {
    // The monotonic clock reads far from wall time here; the date must still give 5 s.
    const wall = jest.spyOn(Date, 'now').mockReturnValue(Date.parse('2025-03-10T12:00:00Z'));
    try {
      const provider = new OpenAIProvider({ baseUrl: `${baseUrl}/api/v3`, model: 'openai-429-date' });
      const error = await provider
        .complete(REQUEST, { signal: new AbortController().signal })
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ kind: 'rate_limited', retryAfterMs: 5000 });
    } finally {
      wall.mockRestore();
    }
  });

  it('maps insufficient_quota, auth, bad request and server errors', async () => {
    // A used-up quota is no passing 429: the endpoint is unusable until a person acts.
    expect(await failure('openai-quota')).toMatchObject({
      kind: 'quota_exhausted',
      unusable: 'quota_exhausted',
      retryable: false,
    });
    expect(await failure('openai-401')).toMatchObject({
      kind: 'auth',
      options: { status: 401, providerCode: 'invalid_api_key' },
    });
    expect(await failure('openai-403')).toMatchObject({ kind: 'auth' });
    expect(await failure('openai-400')).toMatchObject({
      kind: 'bad_request',
      options: { providerCode: 'context_length_exceeded' },
    });
    // The body's code decides before the status (this route sends the context-length body on a 404).
    expect(await failure('openai-404')).toMatchObject({ kind: 'bad_request' });
    expect(await failure('openai-500')).toMatchObject({
      kind: 'server',
      retryable: true,
      options: { status: 500 },
    });
  });
});

describe('OpenAIProvider with recorded Volcengine Ark responses', () => {
  it('streams a reasoning model: reasoning_content is kept apart from the text, content and usage kept', async () => {
    const deltas: string[] = [];
    const result = await call('ark-text', REQUEST, (text) => deltas.push(text));
    expect(result.text).toBe('火山方舟按RPM和TPM限流，超限返回429。');
    expect(deltas.join('')).toBe(result.text);
    expect(deltas).not.toContain('');
    expect(result.usage).toEqual({ promptTokens: 19, completionTokens: 31, reasoningTokens: 12 });
    expect(result.reasoning).toBeTruthy();
    expect(result.text).not.toContain(result.reasoning!);
    expect(result.finishReason).toBe('stop');
  });

  it('reads a tool call sent in one piece after its header', async () => {
    const result = await call('ark-tool');
    expect(result.toolCalls).toEqual([
      { id: 'call_9xk2mq7r1b3c5d7e', name: 'search_web', arguments: '{"query": "火山方舟 限流 最新"}' },
    ]);
    expect(result.finishReason).toBe('tool_calls');
  });

  it('recognises Ark rate-limit codes, even on an unexpected status', async () => {
    const rpm = await failure('ark-429-rpm');
    expect(rpm).toMatchObject({ kind: 'rate_limited', retryable: true });
    expect(rpm.options).toMatchObject({ status: 429, providerCode: 'RateLimitExceeded.EndpointRPMExceeded' });
    expect(rpm.retryAfterMs).toBeUndefined();
    const tpm = await failure('ark-429-tpm-on-400');
    expect(tpm).toMatchObject({
      kind: 'rate_limited',
      options: { status: 400, providerCode: 'ModelAccountTpmRateLimitExceeded' },
    });
  });

  it('maps ServerOverloaded to a burst refusal on 429 and to server (with Retry-After) otherwise', async () => {
    expect(await failure('ark-overloaded-429')).toMatchObject({
      kind: 'burst',
      options: { providerCode: 'ServerOverloaded' },
    });
    expect(await failure('ark-overloaded-503')).toMatchObject({
      kind: 'server',
      retryAfterMs: 3000,
      options: { status: 503 },
    });
  });
});

describe('toOpenAIMessages', () => {
  it('maps tool calls and tool results to the OpenAI wire format', () => {
    const messages: ChatMessage[] = [
      { role: 'system', content: 's' },
      { role: 'user', content: 'u' },
      {
        role: 'assistant',
        content: '',
        toolCalls: [{ id: 'c1', name: 'search_web', arguments: '{"query":"q"}' }],
      },
      { role: 'tool', toolCallId: 'c1', content: '{"results":[]}' },
      { role: 'assistant', content: 'done' },
    ];
    expect(toOpenAIMessages(messages)).toEqual([
      { role: 'system', content: 's' },
      { role: 'user', content: 'u' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'c1', type: 'function', function: { name: 'search_web', arguments: '{"query":"q"}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'c1', content: '{"results":[]}' },
      { role: 'assistant', content: 'done' },
    ]);
    expect(() => toOpenAIMessages([{ role: 'tool', content: 'x' }])).toThrow(ProviderError);
  });
});

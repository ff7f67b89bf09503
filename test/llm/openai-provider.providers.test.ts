import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { CompletionRequest } from '../../api/llm/provider';
import { ProviderError } from '../../api/llm/provider';
import { OpenAIProvider, type OpenAIProviderOptions } from '../../api/llm/providers/openai-provider';

/**
 * The adapter against responses recorded from real providers (test/fixtures/llm/providers, each
 * with its source in the README there), replayed by a tiny local HTTP server. The request's
 * `model` names the fixture to answer with.
 */

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'llm', 'providers');

const ROUTES: Record<string, { status: number; file: string }> = {
  'gpt-4o': { status: 200, file: 'openai-gpt-4o-stream-usage.sse' },
  'deepseek-chat': { status: 200, file: 'deepseek-chat-stream-usage.sse' },
  'doubao-1-5-pro': { status: 200, file: 'ark-doubao-1-5-pro-stream.sse' },
  'deepseek-reasoner': { status: 200, file: 'deepseek-reasoner-stream.sse' },
  'doubao-thinking': { status: 400, file: 'ark-400-unsupported-thinking.json' },
  overdue: { status: 403, file: 'ark-403-account-overdue.json' },
  'missing-model': { status: 404, file: 'ark-404-model-not-found.json' },
};

let server: http.Server;
let baseUrl: string;
const received: Record<string, unknown>[] = [];

beforeAll(async () => {
  server = http.createServer((request, response) => {
    let raw = '';
    request.setEncoding('utf8');
    request.on('data', (part: string) => (raw += part));
    request.on('end', () => {
      const body = JSON.parse(raw) as Record<string, unknown>;
      received.push(body);
      const fixture = ROUTES[String(body.model)];
      response.writeHead(fixture.status, {
        'content-type': fixture.file.endsWith('.sse')
          ? 'text/event-stream; charset=utf-8'
          : 'application/json',
      });
      response.end(fs.readFileSync(path.join(FIXTURES, fixture.file)));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v3`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const REQUEST: CompletionRequest = { messages: [{ role: 'user', content: '你的名字叫什么？只回答名字' }] };

async function stream(model: string, options: Partial<OpenAIProviderOptions> = {}) {
  const deltas: string[] = [];
  const reasoning: string[] = [];
  let progress = 0;
  const usage: unknown[] = [];
  const provider = new OpenAIProvider({ baseUrl, model, ...options });
  const result = await provider.complete(REQUEST, {
    signal: new AbortController().signal,
    onDelta: (text) => deltas.push(text),
    onReasoning: (text) => reasoning.push(text),
    onProgress: () => progress++,
    onUsage: (reported) => usage.push(reported),
  });
  await provider.close();
  return { result, deltas, reasoning, progress, usage, sent: received.at(-1)! };
}

async function failure(model: string): Promise<ProviderError> {
  const provider = new OpenAIProvider({ baseUrl, model });
  const error = await provider.complete(REQUEST, { signal: new AbortController().signal }).then(
    () => undefined,
    (reason: unknown) => reason,
  );
  await provider.close();
  expect(error).toBeInstanceOf(ProviderError);
  return error as ProviderError;
}

describe('OpenAIProvider with responses recorded from real providers', () => {
  it('OpenAI gpt-4o: settles on the include_usage chunk (empty choices), and asks for it', async () => {
    const { result, deltas, progress, sent } = await stream('gpt-4o');
    expect(result).toEqual({
      text: '我是助手。',
      toolCalls: [],
      usage: { promptTokens: 14, completionTokens: 3 },
      finishReason: 'stop',
    });
    expect(deltas).toEqual(['我是', '助手', '。']);
    // Every chunk is progress: the first one is the call's first byte.
    expect(progress).toBe(6);
    expect(sent).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    expect(sent).not.toHaveProperty('thinking');
  });

  it('DeepSeek deepseek-chat: the usage on the finishing chunk counts', async () => {
    const { result } = await stream('deepseek-chat');
    expect(result.text).toBe('我是DeepSeek Chat，一个由深度求索公司开发的智能助手。');
    expect(result.usage).toEqual({ promptTokens: 11, completionTokens: 15 });
    expect(result.finishReason).toBe('stop');
  });

  it('Ark doubao: a stream without usage settles on an estimate', async () => {
    const { result } = await stream('doubao-1-5-pro');
    expect(result.text).toBe('Hello! How can I help you today?');
    expect(result.finishReason).toBe('stop');
    expect(result.usage.completionTokens).toBeGreaterThan(0);
    expect(result.usage.promptTokens).toBeGreaterThan(0);
  });

  it('deepseek-reasoner: reasoning_content streams apart from the answer; reasoning tokens are reported', async () => {
    const { result, deltas, reasoning, usage, sent } = await stream('deepseek-reasoner', {
      thinking: 'enabled',
      chunkIncludeUsage: true,
    });
    expect(reasoning).toEqual(['好的', '，']);
    expect(deltas).toEqual(['纱', '！']);
    expect(result.text).toBe('纱！');
    expect(result.reasoning).toBe('好的，');
    // Reasoning tokens are completion tokens: TPM counts them.
    expect(result.usage).toEqual({ promptTokens: 6, completionTokens: 1552, reasoningTokens: 199 });
    // Reported as it arrives too, so a stream cut after it would still settle on it.
    expect(usage).toEqual([result.usage]);
    expect(sent).toMatchObject({
      thinking: { type: 'enabled' },
      stream_options: { include_usage: true, chunk_include_usage: true },
    });
  });

  it("Ark's refusals: an unsupported thinking type, an overdue account, a missing model make the endpoint unusable", async () => {
    expect(await failure('doubao-thinking')).toMatchObject({
      kind: 'bad_request',
      unusable: 'misconfigured',
      retryable: false,
      options: { status: 400, providerCode: 'InvalidParameter' },
    });
    expect(await failure('overdue')).toMatchObject({
      kind: 'quota_exhausted',
      unusable: 'account_overdue',
      retryable: false,
      fallbackable: true,
      options: { status: 403, providerCode: 'AccountOverdueError' },
    });
    expect(await failure('missing-model')).toMatchObject({
      kind: 'not_found',
      unusable: 'model_not_found',
      options: { status: 404, providerCode: 'InvalidEndpointOrModel.NotFound' },
    });
  });
});

import { isAbortError } from '../../api/errors';
import type { ChatMessage, CompletionRequest, ToolDefinition } from '../../api/llm/provider';
import { ProviderError } from '../../api/llm/provider';
import { OpenAIProvider } from '../../api/llm/providers/openai-provider';
import { simulateCompletion } from '../../api/llm/sim/sim-model';
import { startSimServer } from '../../api/llm/sim/sim-server';
import type { SimServer } from '../../api/llm/sim/sim-server';

const SEARCH_TOOL: ToolDefinition = {
  name: 'search_web',
  description: 'Search the web',
  parameters: { type: 'object', properties: { query: { type: 'string' } }, required: ['query'] },
};
const REPORT: CompletionRequest = {
  messages: [
    { role: 'system', content: 'You are the Reporter of Troupe.' },
    { role: 'user', content: 'What is Rust?' },
  ],
};

const servers: SimServer[] = [];
async function server(options: Parameters<typeof startSimServer>[0] = {}): Promise<SimServer> {
  const started = await startSimServer({ port: 0, latencyMs: 5, tps: 5000, ...options });
  servers.push(started);
  return started;
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((started) => started.close()));
});

function provider(sim: SimServer, options: Partial<ConstructorParameters<typeof OpenAIProvider>[0]> = {}) {
  return new OpenAIProvider({ baseUrl: sim.baseUrl, apiKey: 'test', model: 'troupe-sim', ...options });
}

const signal = () => new AbortController().signal;

async function waitFor(check: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('OpenAIProvider against sim-llm', () => {
  it('streams text with usage', async () => {
    const sim = await server();
    const deltas: string[] = [];
    const result = await provider(sim).complete(REPORT, {
      signal: signal(),
      onDelta: (text) => deltas.push(text),
    });
    const expected = simulateCompletion(REPORT);
    expect(result).toEqual({
      text: expected.text,
      toolCalls: [],
      usage: expected.usage,
      finishReason: 'stop',
    });
    expect(deltas.length).toBe(expected.chunks.length);
    expect(deltas.join('')).toBe(expected.text);
    expect(sim.stats()).toMatchObject({
      requests: 1,
      accepted: 1,
      completed: 1,
      inFlight: 0,
      rejected429: 0,
    });
  });

  it('assembles streamed tool-call deltas, then answers from the tool result (messages mapped both ways)', async () => {
    const sim = await server({ port: 0 });
    const llm = provider(sim, { baseUrl: `${sim.url}/api/v3` });
    const messages: ChatMessage[] = [
      { role: 'system', content: 'You are the Assistant of Troupe.' },
      { role: 'user', content: 'search the latest news about Volcengine Ark rate limits and summarise them' },
    ];
    const first = await llm.complete({ messages, tools: [SEARCH_TOOL] }, { signal: signal() });
    const expected = simulateCompletion({ messages, tools: [SEARCH_TOOL] });
    expect(first.finishReason).toBe('tool_calls');
    expect(first.text).toBe('');
    expect(first.toolCalls).toEqual(expected.toolCalls);
    expect(JSON.parse(first.toolCalls[0].arguments)).toEqual({
      query: 'the latest news about Volcengine Ark rate limits',
    });

    messages.push({ role: 'assistant', content: '', toolCalls: first.toolCalls });
    messages.push({
      role: 'tool',
      toolCallId: first.toolCalls[0].id,
      content: JSON.stringify({
        results: [{ title: 'Ark quotas explained', snippet: 'RPM and TPM apply per endpoint.' }],
      }),
    });
    const second = await llm.complete({ messages, tools: [SEARCH_TOOL] }, { signal: signal() });
    expect(second.finishReason).toBe('stop');
    expect(second.toolCalls).toEqual([]);
    expect(second.text).toContain('"Ark quotas explained"');
  });

  it('aborting mid-stream rejects with an AbortError and the server counts the call as aborted', async () => {
    const sim = await server({ latencyMs: 10, tps: 20 });
    const controller = new AbortController();
    const deltas: string[] = [];
    const call = provider(sim).complete(REPORT, {
      signal: controller.signal,
      onDelta: (text) => {
        deltas.push(text);
        if (deltas.length === 2) controller.abort();
      },
    });
    const error = await call.catch((value: unknown) => value);
    expect(isAbortError(error)).toBe(true);
    expect(deltas).toHaveLength(2);
    await waitFor(() => sim.stats().aborted === 1);
    expect(sim.stats()).toMatchObject({ accepted: 1, aborted: 1, completed: 0, inFlight: 0 });
  });

  it('aborting before the first byte also aborts the server-side call', async () => {
    const sim = await server({ latencyMs: 5000 });
    const controller = new AbortController();
    const call = provider(sim).complete(REPORT, { signal: controller.signal });
    await waitFor(() => sim.stats().inFlight === 1);
    controller.abort();
    expect(isAbortError(await call.catch((value: unknown) => value))).toBe(true);
    await waitFor(() => sim.stats().aborted === 1);
  });

  it('maps the concurrency 429 to rate_limited with retryAfterMs', async () => {
    const sim = await server({ concurrency: 1, latencyMs: 300 });
    const llm = provider(sim);
    const first = llm.complete(REPORT, { signal: signal() });
    await waitFor(() => sim.stats().inFlight === 1);
    const error = await llm.complete(REPORT, { signal: signal() }).catch((value: unknown) => value);
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ kind: 'rate_limited', retryAfterMs: 1000, retryable: true });
    expect((error as ProviderError).options.status).toBe(429);
    await first;
    expect(sim.stats()).toMatchObject({
      requests: 2,
      accepted: 1,
      rejected429: 1,
      maxInFlight: 1,
      completed: 1,
    });
  });

  it('maps the rolling-minute RPM 429 (Ark body) with the time until the oldest start leaves the window', async () => {
    const sim = await server({ rpm: 2 });
    const llm = provider(sim);
    await llm.complete(REPORT, { signal: signal() });
    await llm.complete(REPORT, { signal: signal() });
    const error = (await llm
      .complete(REPORT, { signal: signal() })
      .catch((value: unknown) => value)) as ProviderError;
    expect(error.kind).toBe('rate_limited');
    expect(error.options.providerCode).toBe('RateLimitExceeded.EndpointRPMExceeded');
    expect(error.retryAfterMs).toBeGreaterThan(55_000);
    expect(error.retryAfterMs).toBeLessThanOrEqual(60_000);
    expect(sim.stats()).toMatchObject({ accepted: 2, rejected429: 1 });

    // /sim/reset zeroes the counters and the window.
    const reset = await fetch(`${sim.url}/sim/reset`, { method: 'POST' });
    expect(await reset.json()).toEqual({
      requests: 0,
      accepted: 0,
      rejected429: 0,
      inFlight: 0,
      maxInFlight: 0,
      completed: 0,
      aborted: 0,
    });
    await llm.complete(REPORT, { signal: signal() });
    const stats = await (await fetch(`${sim.url}/sim/stats`)).json();
    expect(stats).toEqual({
      requests: 1,
      accepted: 1,
      rejected429: 0,
      inFlight: 0,
      maxInFlight: 1,
      completed: 1,
      aborted: 0,
    });
  });

  it('works without streaming', async () => {
    const sim = await server();
    const deltas: string[] = [];
    const result = await provider(sim, { stream: false }).complete(REPORT, {
      signal: signal(),
      onDelta: (text) => deltas.push(text),
    });
    const expected = simulateCompletion(REPORT);
    expect(result).toEqual({
      text: expected.text,
      toolCalls: [],
      usage: expected.usage,
      finishReason: 'stop',
    });
    expect(deltas).toEqual([expected.text]);

    const tools = await provider(sim, { stream: false }).complete(
      { messages: [{ role: 'user', content: '搜索 最新 的 Node.js 新闻' }], tools: [SEARCH_TOOL] },
      { signal: signal() },
    );
    expect(tools.finishReason).toBe('tool_calls');
    expect(tools.toolCalls[0].name).toBe('search_web');
  });

  it('passes max_tokens and reports finishReason length', async () => {
    const sim = await server();
    const result = await provider(sim, { maxOutputTokens: 12 }).complete(REPORT, { signal: signal() });
    expect(result.finishReason).toBe('length');
    expect(result.usage.completionTokens).toBeLessThanOrEqual(12);
  });

  it('maps a 400 to bad_request and a refused connection to network', async () => {
    const sim = await server();
    const bad = await provider(sim)
      .complete({ messages: [] }, { signal: signal() })
      .catch((value: unknown) => value);
    expect(bad).toMatchObject({ kind: 'bad_request', retryable: false });
    const url = sim.baseUrl;
    await sim.close();
    const down = await new OpenAIProvider({ baseUrl: url, model: 'm' })
      .complete(REPORT, { signal: signal() })
      .catch((value: unknown) => value);
    expect(down).toMatchObject({ kind: 'network', retryable: true });
  });
});

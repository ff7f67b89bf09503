import { ManualClock } from '../../api/clock';
import { isAbortError } from '../../api/errors';
import type { CompletionRequest } from '../../api/llm/provider';
import { ProviderError } from '../../api/llm/provider';
import { createProvider } from '../../api/llm/providers/create-provider';
import { OpenAIProvider } from '../../api/llm/providers/openai-provider';
import { SimProvider } from '../../api/llm/providers/sim-provider';
import { simulateCompletion } from '../../api/llm/sim/sim-model';
import { testConfig } from '../../config';

const REQUEST: CompletionRequest = {
  messages: [
    { role: 'system', content: 'You are the Reporter of Troupe.' },
    { role: 'user', content: 'What is Rust?' },
  ],
};
const EXPECTED = simulateCompletion(REQUEST);

function setup(options: { latencyMs?: number; tokensPerSecond?: number; minTickMs?: number } = {}) {
  const clock = new ManualClock(0);
  const provider = new SimProvider({ latencyMs: 500, tokensPerSecond: 10, minTickMs: 0, clock, ...options });
  return { clock, provider };
}

describe('SimProvider', () => {
  it('waits the first-token latency, then paces chunks at tokensPerSecond', async () => {
    const { clock, provider } = setup();
    const deltas: string[] = [];
    let result: Awaited<ReturnType<SimProvider['complete']>> | undefined;
    void provider
      .complete(REQUEST, { signal: new AbortController().signal, onDelta: (text) => deltas.push(text) })
      .then((value) => (result = value));

    await clock.advanceAsync(499);
    expect(deltas).toEqual([]);
    await clock.advanceAsync(1);
    expect(deltas).toEqual(EXPECTED.chunks.slice(0, 1));
    await clock.advanceAsync(99);
    expect(deltas).toHaveLength(1);
    await clock.advanceAsync(1);
    expect(deltas).toEqual(EXPECTED.chunks.slice(0, 2));
    await clock.advanceAsync(1000);
    expect(deltas).toHaveLength(12);
    expect(result).toBeUndefined();

    // The last chunk goes out at latency + (n - 1) / tps.
    const total = 500 + (EXPECTED.chunks.length - 1) * 100;
    await clock.advanceAsync(total - clock.now());
    expect(deltas.join('')).toBe(EXPECTED.text);
    expect(result).toEqual({
      text: EXPECTED.text,
      toolCalls: [],
      usage: EXPECTED.usage,
      finishReason: 'stop',
    });
    expect(clock.pendingTimers()).toBe(0);
    expect(provider.stats()).toEqual({
      started: 1,
      completed: 1,
      aborted: 0,
      failed: 0,
      inFlight: 0,
      maxInFlight: 1,
    });
  });

  it('batches chunks per wake-up at high speed (minTickMs) without changing the output', async () => {
    const { clock, provider } = setup({ latencyMs: 0, tokensPerSecond: 1000, minTickMs: 20 });
    const deltas: string[] = [];
    const done = provider.complete(REQUEST, {
      signal: new AbortController().signal,
      onDelta: (text) => deltas.push(text),
    });
    let wakeUps = 0;
    while (clock.pendingTimers() > 0) {
      wakeUps++;
      await clock.advanceAsync(20);
    }
    expect((await done).text).toBe(EXPECTED.text);
    expect(deltas.join('')).toBe(EXPECTED.text);
    expect(wakeUps).toBeLessThanOrEqual(Math.ceil(EXPECTED.chunks.length / 20) + 2);
  });

  it('aborts while waiting for the first token: rejects at once, leaves no timer', async () => {
    const { clock, provider } = setup();
    const controller = new AbortController();
    const call = provider.complete(REQUEST, { signal: controller.signal });
    await clock.advanceAsync(200);
    expect(provider.stats().inFlight).toBe(1);
    controller.abort();
    const error = await call.catch((reason: unknown) => reason);
    expect(isAbortError(error)).toBe(true);
    expect(clock.pendingTimers()).toBe(0);
    expect(provider.stats()).toMatchObject({ started: 1, aborted: 1, completed: 0, inFlight: 0 });
  });

  it('aborts mid-stream, also from inside onDelta, carrying the abort reason', async () => {
    const { clock, provider } = setup();
    const controller = new AbortController();
    const deltas: string[] = [];
    const reason = new Error('client left');
    const call = provider.complete(REQUEST, {
      signal: controller.signal,
      onDelta: (text) => {
        deltas.push(text);
        if (deltas.length === 3) controller.abort(reason);
      },
    });
    await clock.advanceAsync(2000);
    const error = (await call.catch((value: unknown) => value)) as Error;
    expect(isAbortError(error)).toBe(true);
    expect(error.cause).toBe(reason);
    expect(deltas).toHaveLength(3);
    expect(clock.pendingTimers()).toBe(0);
    expect(provider.stats()).toMatchObject({ aborted: 1, inFlight: 0 });
  });

  it('rejects an already aborted signal without starting a call', async () => {
    const { clock, provider } = setup();
    const error = await provider
      .complete(REQUEST, { signal: AbortSignal.abort() })
      .catch((value: unknown) => value);
    expect(isAbortError(error)).toBe(true);
    expect(clock.pendingTimers()).toBe(0);
    expect(provider.stats().started).toBe(0);
  });

  it('counts concurrent calls in flight and their maximum', async () => {
    const { clock, provider } = setup({ latencyMs: 100, tokensPerSecond: 1_000_000 });
    const controllers = [new AbortController(), new AbortController(), new AbortController()];
    const calls = controllers.map((controller) =>
      provider.complete(REQUEST, { signal: controller.signal }).catch(() => 'aborted'),
    );
    expect(provider.stats()).toMatchObject({ started: 3, inFlight: 3, maxInFlight: 3 });
    controllers[0].abort();
    await clock.advanceAsync(200, 1);
    expect(await Promise.all(calls)).toEqual(['aborted', expect.anything(), expect.anything()]);
    expect(provider.stats()).toEqual({
      started: 3,
      completed: 2,
      aborted: 1,
      failed: 0,
      inFlight: 0,
      maxInFlight: 3,
    });
    provider.resetStats();
    expect(provider.stats()).toEqual({
      started: 0,
      completed: 0,
      aborted: 0,
      failed: 0,
      inFlight: 0,
      maxInFlight: 0,
    });
  });

  it('returns tool calls after the latency, with no text', async () => {
    const { clock, provider } = setup();
    const request: CompletionRequest = {
      messages: [{ role: 'user', content: 'search the latest news about Node.js' }],
      tools: [{ name: 'search_web', description: 'search', parameters: {} }],
    };
    const call = provider.complete(request, {
      signal: new AbortController().signal,
      onDelta: () => undefined,
    });
    await clock.advanceAsync(500);
    const result = await call;
    expect(result.finishReason).toBe('tool_calls');
    expect(result.toolCalls[0]).toMatchObject({ name: 'search_web' });
    expect(JSON.parse(result.toolCalls[0].arguments)).toEqual({ query: 'the latest news about Node.js' });
  });

  it('injects faults and records calls for tests', async () => {
    const clock = new ManualClock(0);
    const provider = new SimProvider({
      latencyMs: 10,
      clock,
      record: true,
      fault: (_request, callNumber) =>
        callNumber === 1
          ? new ProviderError('rate_limited', 'simulated 429', { retryAfterMs: 1000 })
          : undefined,
    });
    const first = provider
      .complete(REQUEST, { signal: new AbortController().signal })
      .catch((value: unknown) => value);
    await clock.advanceAsync(10);
    expect(await first).toMatchObject({ kind: 'rate_limited', retryAfterMs: 1000 });
    const second = provider.complete(REQUEST, { signal: new AbortController().signal });
    await clock.advanceAsync(10_000, 10);
    expect((await second).text).toBe(EXPECTED.text);
    expect(provider.calls).toEqual([REQUEST, REQUEST]);
    expect(provider.stats()).toMatchObject({ started: 2, failed: 1, completed: 1, inFlight: 0 });
  });

  it('an error thrown by onDelta fails the call and frees its slot', async () => {
    const { clock, provider } = setup();
    const call = provider.complete(REQUEST, {
      signal: new AbortController().signal,
      onDelta: () => {
        throw new Error('listener broke');
      },
    });
    await clock.advanceAsync(500);
    await expect(call).rejects.toThrow('listener broke');
    expect(clock.pendingTimers()).toBe(0);
    expect(provider.stats()).toMatchObject({ failed: 1, inFlight: 0 });
  });
});

describe('createProvider', () => {
  it('builds the sim provider by default and the OpenAI-compatible one for LLM_PROVIDER=openai', () => {
    expect(createProvider(testConfig())).toBeInstanceOf(SimProvider);
    const openai = createProvider(
      testConfig({
        LLM_PROVIDER: 'openai',
        LLM_BASE_URL: 'http://127.0.0.1:9/v1',
        LLM_MODEL: 'ep-123',
        LLM_API_KEY: 'k',
      }),
    );
    expect(openai).toBeInstanceOf(OpenAIProvider);
    expect(openai.name).toBe('openai');
  });
});

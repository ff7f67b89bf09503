import { ManualClock } from '../../../api/clock';
import { AppError } from '../../../api/errors';
import { CachingGateway } from '../../../api/llm/cache/caching-gateway';
import { LruResponseCache } from '../../../api/llm/cache/lru-response-cache';
import type { CachedResponse, ResponseCache } from '../../../api/llm/cache/response-cache';
import type { LlmCallOptions, LlmCallOutcome, LlmGateway } from '../../../api/llm/llm-gateway';
import type { CompletionRequest } from '../../../api/llm/provider';
import { createLogger } from '../../../api/logger';
import { drain, meta } from '../helpers';

interface InnerCall {
  request: CompletionRequest;
  options: LlmCallOptions;
  delta(text: string): void;
  finish(result?: Partial<LlmCallOutcome>): void;
  fail(error: unknown): void;
}

/** The scheduler's place: calls the test streams and finishes by hand; aborts reject as the scheduler does. */
class ManualGateway implements LlmGateway {
  readonly calls: InnerCall[] = [];
  admit() {
    return Promise.resolve({ release() {} });
  }
  complete(_meta: unknown, request: CompletionRequest, options: LlmCallOptions): Promise<LlmCallOutcome> {
    return new Promise((resolve, reject) => {
      let text = '';
      const call: InnerCall = {
        request,
        options,
        delta: (chunk) => {
          text += chunk;
          options.onDelta?.(chunk);
        },
        finish: (result = {}) =>
          resolve({
            text,
            toolCalls: [],
            usage: { promptTokens: 100, completionTokens: 20 },
            finishReason: 'stop',
            waitMs: 3,
            processMs: 40,
            attempts: 1,
            ...result,
          }),
        fail: reject,
      };
      options.signal.addEventListener('abort', () => reject(options.signal.reason), { once: true });
      this.calls.push(call);
    });
  }
}

const ask = (content: string): CompletionRequest => ({
  messages: [
    { role: 'system', content: 'You are the Host of Troupe.' },
    { role: 'user', content },
  ],
  maxTokens: 256,
  temperature: 0.2,
});

function setup(cache?: ResponseCache) {
  const clock = new ManualClock();
  const inner = new ManualGateway();
  const logger = createLogger('silent');
  const warn = jest.spyOn(logger, 'warn');
  const gateway = new CachingGateway({
    inner,
    cache: cache ?? new LruResponseCache({ maxBytes: 1_000_000, clock }),
    scope: { provider: 'fake', model: 'm1' },
    ttlSeconds: 60,
    clock,
    logger,
  });
  return { clock, inner, gateway, warn };
}

function call(gateway: LlmGateway, request: CompletionRequest, controller = new AbortController()) {
  const deltas: string[] = [];
  const result = gateway.complete(meta('host'), request, {
    signal: controller.signal,
    onDelta: (text) => deltas.push(text),
  });
  result.catch(() => undefined);
  return { deltas, result, controller };
}

describe('CachingGateway: hits', () => {
  test('a second identical call is answered from the cache: no inner call, same text replayed as deltas', async () => {
    const { inner, gateway } = setup();
    const first = call(gateway, ask('What is a token bucket?'));
    await drain();
    inner.calls[0].delta('A token bucket ');
    inner.calls[0].delta('refills at a fixed rate.');
    inner.calls[0].finish();
    const firstOutcome = await first.result;
    expect(firstOutcome.cached).toBe(false);
    await drain();

    const second = call(gateway, ask('What is a token bucket?'));
    const outcome = await second.result;
    expect(inner.calls).toHaveLength(1);
    expect(outcome).toMatchObject({
      text: 'A token bucket refills at a fixed rate.',
      cached: true,
      waitMs: 0,
      processMs: 0,
      usage: { promptTokens: 0, completionTokens: 0 },
    });
    expect(second.deltas.join('')).toBe('A token bucket refills at a fixed rate.');
    expect(gateway.status()).toMatchObject({
      hits: 1,
      misses: 1,
      callsSaved: 1,
      tokensSaved: 120,
      cacheHitRate: '50%',
      stored: 1,
    });
  });

  test('a different message, model parameter or history is a miss', async () => {
    const { inner, gateway } = setup();
    const first = call(gateway, ask('Explain backpressure'));
    await drain();
    inner.calls[0].delta('ok');
    inner.calls[0].finish();
    await first.result;
    const variants: CompletionRequest[] = [
      ask('Explain backpressure!'),
      { ...ask('Explain backpressure'), temperature: 0.9 },
      { ...ask('Explain backpressure'), maxTokens: 512 },
      {
        ...ask('Explain backpressure'),
        messages: [
          { role: 'system', content: 'You are the Host of Troupe.' },
          { role: 'user', content: 'Earlier question' },
          { role: 'assistant', content: 'Earlier answer' },
          { role: 'user', content: 'Explain backpressure' },
        ],
      },
    ];
    for (const variant of variants) {
      const pending = call(gateway, variant);
      await drain();
      inner.calls[inner.calls.length - 1].finish({ text: 'other' });
      expect((await pending.result).cached).toBe(false);
    }
    expect(inner.calls).toHaveLength(1 + variants.length);
  });

  test('a tool-call turn is replayed only for the same tool results', async () => {
    const { inner, gateway } = setup();
    const withResults = (content: string): CompletionRequest => ({
      messages: [
        { role: 'system', content: 'You are the Planner of Troupe.' },
        { role: 'user', content: 'latest Ark limits' },
        {
          role: 'assistant',
          content: '',
          toolCalls: [{ id: 'call_1', name: 'search_web', arguments: '{"query":"ark"}' }],
        },
        { role: 'tool', toolCallId: 'call_1', content },
      ],
    });
    const first = call(gateway, withResults('{"results":["A"]}'));
    await drain();
    inner.calls[0].finish({ text: 'plan from A' });
    await first.result;
    expect((await call(gateway, withResults('{"results":["A"]}')).result).cached).toBe(true);
    const other = call(gateway, withResults('{"results":["B"]}'));
    await drain();
    expect(inner.calls).toHaveLength(2);
    inner.calls[1].finish({ text: 'plan from B' });
    expect((await other.result).text).toBe('plan from B');
  });
});

describe('CachingGateway: what is never stored', () => {
  test.each([
    ['a truncated answer (finishReason length)', { finishReason: 'length' as const }],
    ['an answer stopped by the provider for another reason', { finishReason: 'other' as const }],
    ['an empty answer', { text: '' }],
  ])('%s', async (_name, result: Partial<LlmCallOutcome>) => {
    const { inner, gateway } = setup();
    const first = call(gateway, ask('q'));
    await drain();
    if (result.text === undefined) inner.calls[0].delta('partial');
    inner.calls[0].finish(result);
    await first.result;
    const second = call(gateway, ask('q'));
    await drain();
    expect(inner.calls).toHaveLength(2);
    inner.calls[1].finish({ text: 'x' });
    await second.result;
  });

  test('errors (a 429 that ran out of retries, a timeout) and aborts are not stored', async () => {
    const { inner, gateway } = setup();
    const failed = call(gateway, ask('q'));
    await drain();
    inner.calls[0].delta('half an ans');
    inner.calls[0].fail(new AppError('provider_rate_limited'));
    await expect(failed.result).rejects.toMatchObject({ code: 'provider_rate_limited' });
    const aborted = call(gateway, ask('q'));
    await drain();
    aborted.controller.abort(new AppError('cancelled'));
    await expect(aborted.result).rejects.toMatchObject({ code: 'cancelled' });
    const third = call(gateway, ask('q'));
    await drain();
    expect(inner.calls).toHaveLength(3);
    expect(inner.calls[1].options.signal.aborted).toBe(true);
    inner.calls[2].finish({ text: 'fine' });
    expect((await third.result).cached).toBe(false);
    expect(gateway.status().stored).toBe(1);
  });
});

describe('CachingGateway: identical calls in flight (single-flight)', () => {
  test('followers share the one inner call and see its deltas, also those before they joined', async () => {
    const { inner, gateway } = setup();
    const leader = call(gateway, ask('shared'));
    await drain();
    inner.calls[0].delta('one ');
    const follower = call(gateway, ask('shared'));
    await drain();
    inner.calls[0].delta('two');
    inner.calls[0].finish();
    const [leading, following] = await Promise.all([leader.result, follower.result]);
    expect(inner.calls).toHaveLength(1);
    expect(leader.deltas.join('')).toBe('one two');
    expect(follower.deltas.join('')).toBe('one two');
    expect(leading).toMatchObject({ cached: false, usage: { promptTokens: 100 } });
    expect(following).toMatchObject({ cached: true, text: 'one two', usage: { promptTokens: 0 } });
    expect(gateway.status()).toMatchObject({ misses: 1, sharedHits: 1, callsSaved: 1 });
  });

  test("a follower's abort detaches it alone; the leader's abort does not fail the follower", async () => {
    const { inner, gateway } = setup();
    const leader = call(gateway, ask('shared'));
    await drain();
    const quitter = call(gateway, ask('shared'));
    const stayer = call(gateway, ask('shared'));
    await drain();
    quitter.controller.abort(new AppError('cancelled'));
    await expect(quitter.result).rejects.toMatchObject({ code: 'cancelled' });
    leader.controller.abort(new AppError('cancelled'));
    await expect(leader.result).rejects.toMatchObject({ code: 'cancelled' });
    expect(inner.calls[0].options.signal.aborted).toBe(false);
    inner.calls[0].delta('still wanted');
    inner.calls[0].finish();
    expect((await stayer.result).text).toBe('still wanted');
    expect(stayer.deltas).toEqual(['still wanted']);
  });

  test('the inner call is aborted once every caller has gone, and a newcomer starts afresh', async () => {
    const { inner, gateway } = setup();
    const first = call(gateway, ask('shared'));
    await drain();
    const second = call(gateway, ask('shared'));
    await drain();
    first.controller.abort(new AppError('cancelled'));
    second.controller.abort(new AppError('cancelled'));
    await expect(second.result).rejects.toMatchObject({ code: 'cancelled' });
    expect(inner.calls[0].options.signal.aborted).toBe(true);
    const third = call(gateway, ask('shared'));
    await drain();
    expect(inner.calls).toHaveLength(2);
    inner.calls[1].finish({ text: 'fresh' });
    expect((await third.result).text).toBe('fresh');
  });
});

describe('CachingGateway: a failing cache', () => {
  test('degrades to a miss, never fails the call, and warns once per outage', async () => {
    let down = true;
    const stored = new Map<string, CachedResponse>();
    const flaky: ResponseCache = {
      backend: 'redis',
      async get(key) {
        if (down) throw new Error('ECONNREFUSED');
        return stored.get(key);
      },
      async set(key, value) {
        if (down) throw new Error('ECONNREFUSED');
        stored.set(key, value);
      },
    };
    const { inner, gateway, warn } = setup(flaky);
    for (let index = 0; index < 3; index++) {
      const pending = call(gateway, ask('q'));
      await drain();
      inner.calls[index].finish({ text: 'answer' });
      expect((await pending.result).text).toBe('answer');
      await drain();
    }
    expect(warn).toHaveBeenCalledTimes(1);
    expect(gateway.status()).toMatchObject({ errors: 6, misses: 3, hits: 0 });
    down = false;
    const again = call(gateway, ask('q'));
    await drain();
    inner.calls[3].finish({ text: 'answer' });
    await again.result;
    await drain();
    expect((await call(gateway, ask('q')).result).cached).toBe(true);
  });
});

describe('CachingGateway: a thinking model', () => {
  test('every caller of a shared call follows its reasoning apart from its text, a late joiner from the start', async () => {
    const { inner, gateway } = setup();
    const follow = () => {
      const seen: string[] = [];
      const result = gateway.complete(meta('host'), ask('Think first'), {
        signal: new AbortController().signal,
        onDelta: (text) => seen.push(`text:${text}`),
        onReasoning: (text) => seen.push(`reasoning:${text}`),
      });
      return { seen, result };
    };
    const first = follow();
    await drain();
    inner.calls[0].options.onReasoning?.('Let me think.');
    const late = follow();
    await drain();
    inner.calls[0].delta('Answer');
    inner.calls[0].finish();
    await Promise.all([first.result, late.result]);
    expect(inner.calls).toHaveLength(1);
    expect(first.seen).toEqual(['reasoning:Let me think.', 'text:Answer']);
    expect(late.seen).toEqual(['reasoning:Let me think.', 'text:Answer']);
  });
});

import { ManualClock } from '../../api/clock';
import { AppError } from '../../api/errors';
import { wrap, type CallContext, type CallPolicy } from '../../api/llm/policies/call-policy';
import type { CompletionResult } from '../../api/llm/provider';
import { ProviderBreaker } from '../../api/llm/provider-breaker';
import { ProviderError } from '../../api/llm/provider';
import { advance, drain, meta, request } from './helpers';

const answer: CompletionResult = {
  text: 'ok',
  toolCalls: [],
  usage: { promptTokens: 1, completionTokens: 1 },
  finishReason: 'stop',
};

function context(): CallContext {
  return {
    meta: meta('host'),
    request,
    deadline: 60_000,
    callTimeoutMs: 60_000,
    firstEnqueuedAt: 0,
    estimatedTokens: 1,
    admitted: false,
    progress: {
      attempts: 0,
      waitMs: 0,
      processMs: 0,
      attemptStartedAt: 0,
      deltaSeen: false,
      reasoningDeltas: 0,
    },
  };
}

describe('wrap', () => {
  it('runs the policies outermost first, each around the next, the step innermost', async () => {
    const trace: string[] = [];
    const named = (name: string): CallPolicy => ({
      execute: async (next, signal) => {
        trace.push(`${name} in`);
        try {
          return await next(signal);
        } finally {
          trace.push(`${name} out`);
        }
      },
    });
    const result = await wrap(named('a'), named('b'), named('c')).execute(
      async () => {
        trace.push('step');
        return answer;
      },
      new AbortController().signal,
      context(),
    );
    expect(result).toBe(answer);
    expect(trace).toEqual(['a in', 'b in', 'c in', 'step', 'c out', 'b out', 'a out']);
  });

  it('hands each policy the signal the one outside it chose', async () => {
    const narrowed = new AbortController();
    const narrowing: CallPolicy = { execute: (next) => next(narrowed.signal) };
    let seen: AbortSignal | undefined;
    await wrap(narrowing).execute(
      async (signal) => {
        seen = signal;
        return answer;
      },
      new AbortController().signal,
      context(),
    );
    expect(seen).toBe(narrowed.signal);
  });
});

describe('ProviderBreaker half-open', () => {
  async function halfOpen() {
    const clock = new ManualClock(0);
    const breaker = new ProviderBreaker({ clock, volumeThreshold: 1, resetTimeoutMs: 1_000 });
    await breaker
      .execute(() => Promise.reject(new ProviderError('server', '503', { status: 503 })))
      .catch(() => undefined);
    expect(breaker.state).toBe('open');
    await advance(clock, 1_000);
    expect(breaker.state).toBe('half_open');
    return { clock, breaker };
  }

  it('makes the first call its probe and fails the others fast until the probe answers', async () => {
    const { breaker } = await halfOpen();
    let answerProbe = () => {};
    const probe = breaker.execute(
      () => new Promise<string>((resolve) => (answerProbe = () => resolve('ok'))),
    );
    let ran = false;
    await expect(
      breaker.execute(async () => {
        ran = true;
        return 'second';
      }),
    ).rejects.toMatchObject({ code: 'llm_unavailable' });
    expect(ran).toBe(false);
    answerProbe();
    await expect(probe).resolves.toBe('ok');
    expect(breaker.state).toBe('closed');
    breaker.shutdown();
  });

  it('stays half-open after an inconclusive probe (a caller abort): the next call probes', async () => {
    const { breaker } = await halfOpen();
    await expect(breaker.execute(() => Promise.reject(new AppError('cancelled')))).rejects.toMatchObject({
      code: 'cancelled',
    });
    await drain();
    expect(breaker.state).toBe('half_open');
    await expect(breaker.execute(async () => 'next')).resolves.toBe('next');
    expect(breaker.state).toBe('closed');
    breaker.shutdown();
  });
});

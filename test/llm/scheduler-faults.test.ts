import { ManualClock } from '../../api/clock';
import { AppError } from '../../api/errors';
import { createLlmScheduler, type CreateLlmSchedulerOptions } from '../../api/llm/create-llm-scheduler';
import type { LlmCallOutcome } from '../../api/llm/llm-gateway';
import { ProviderError } from '../../api/llm/provider';
import { FakeProvider, advance, drain, llmConfig, meta, request } from './helpers';

/**
 * The faults issue 9 found by reading the scheduler, each reproduced on an injected clock:
 * queue pressure must not open the breaker, aborts must not dilute it, a 429 holds everyone, a long
 * Retry-After is remembered, a TPM 429 lowers TPM.
 */
function setup(env: Record<string, string> = {}, options: Partial<CreateLlmSchedulerOptions> = {}) {
  const clock = new ManualClock(0);
  const provider = new FakeProvider(clock);
  const scheduler = createLlmScheduler({
    config: llmConfig({ LLM_MAX_CONCURRENT: '1', LLM_MAX_RPM: '1000', LLM_TIMEOUT: '10000', ...env }),
    provider,
    clock,
    random: () => 0,
    burstWindowMs: 0,
    ...options,
  });
  const call = (
    agent: Parameters<typeof meta>[0] = 'host',
    userId = 'u1',
    signal = new AbortController().signal,
  ) => {
    const slot: { value?: LlmCallOutcome; error?: AppError } = {};
    const promise = scheduler.complete(meta(agent, userId), request, { signal }).then(
      (value) => void (slot.value = value),
      (error: AppError) => void (slot.error = error),
    );
    return { slot, promise };
  };
  return { clock, provider, scheduler, call };
}

const serverError = () => new ProviderError('server', '503', { status: 503 });

describe('scheduler faults', () => {
  it('does not start a call with less time left than a provider call takes (no RPM start spent)', async () => {
    const { clock, provider, scheduler, call } = setup();
    // Measure: one 1 s call.
    provider.latencyMs = 1000;
    await Promise.all([call().promise, advance(clock, 1000)]);
    provider.latencyMs = undefined;
    const first = call('host', 'a');
    const second = call('host', 'b');
    await drain();
    // The first call holds the only slot for 9.5 s; the second then has 0.5 s left, under 1 s.
    await advance(clock, 9500, 500);
    provider.calls[1].resolve();
    await Promise.all([first.promise, second.promise]);
    expect(second.slot.error?.code).toBe('queue_timeout');
    expect(provider.calls).toHaveLength(2);
    expect(scheduler.queue.limiterSnapshot().startsLastMinute).toBe(2);
  });

  it('queue pressure alone never opens the breaker: a timeout on a short remaining budget is no verdict', async () => {
    const { clock, provider, scheduler, call } = setup(
      { LLM_MAX_CONCURRENT: '1', LLM_TIMEOUT: '10000' },
      { retry: { maxAttempts: 1 }, breaker: { volumeThreshold: 1 } },
    );
    provider.latencyMs = 100;
    await Promise.all([call().promise, advance(clock, 100)]);
    provider.latencyMs = undefined;
    // The starved call waits 6 s behind the blocker, then has 4 s (under half of LLM_TIMEOUT) and hangs.
    const blocker = call('host', 'blocker');
    await drain();
    const starved = call('host', 'starved');
    await advance(clock, 6000, 500);
    provider.calls[1].resolve();
    await advance(clock, 4000, 500);
    await Promise.all([blocker.promise, starved.promise]);
    expect(starved.slot.error?.code).toBe('llm_timeout');
    expect(scheduler.breakerState()).toBe('closed');

    // A call that had its whole budget and still hung is a verdict: the breaker opens.
    const hung = call('host', 'hung');
    await advance(clock, 10_000, 500);
    await hung.promise;
    expect(hung.slot.error?.code).toBe('llm_timeout');
    expect(scheduler.breakerState()).toBe('open');
  });

  it('caller aborts do not dilute the failure rate: a failing provider trips on its own failures', async () => {
    const { provider, scheduler, call } = setup(
      { LLM_MAX_CONCURRENT: '20' },
      { retry: { maxAttempts: 1 }, breaker: { volumeThreshold: 3, errorThresholdPercentage: 50 } },
    );
    const leaving = Array.from({ length: 10 }, (_, i) => {
      const controller = new AbortController();
      return { controller, call: call('host', `a${i}`, controller.signal) };
    });
    await drain();
    for (const { controller } of leaving) controller.abort(new AppError('cancelled'));
    await Promise.all(leaving.map(({ call: c }) => c.promise));
    const failing = [call('host', 'f1'), call('host', 'f2'), call('host', 'f3')];
    await drain();
    for (const open of provider.open) open.reject(serverError());
    await Promise.all(failing.map((c) => c.promise));
    // 3 failures of 3 provider verdicts (opossum alone would have seen 3 of 13: 23 %).
    expect(scheduler.breakerState()).toBe('open');
  });

  it("a 429's Retry-After holds every caller, not only the one that got it", async () => {
    const { clock, provider, scheduler, call } = setup({ LLM_MAX_CONCURRENT: '5' });
    provider.failures.push(new ProviderError('rate_limited', '429', { status: 429, retryAfterMs: 5000 }));
    const limited = call('host', 'a');
    await drain();
    const others = [call('host', 'b'), call('planner', 'c')];
    await advance(clock, 4900, 100);
    expect(provider.calls).toHaveLength(1);
    expect(scheduler.status()).toMatchObject({ rateLimited: true, providerHoldMs: 100 });
    await advance(clock, 100);
    expect(provider.calls.length).toBeGreaterThanOrEqual(3);
    for (const open of provider.open) open.resolve();
    await drain();
    for (const open of provider.open) open.resolve();
    await Promise.all([limited.promise, ...others.map((c) => c.promise)]);
    expect([limited, ...others].map((c) => c.slot.value?.text)).toEqual(['ok', 'ok', 'ok']);
  });

  it('remembers a long Retry-After across chats: later calls wait for it, none is sent to probe again', async () => {
    const { clock, provider, scheduler, call } = setup({ LLM_MAX_CONCURRENT: '5' });
    provider.failures.push(
      new ProviderError('rate_limited', '429', { status: 429, retryAfterMs: 3_600_000 }),
    );
    const first = call();
    await advance(clock, 100);
    await first.promise;
    expect(first.slot.error?.code).toBe('provider_rate_limited');
    const second = call('host', 'u2');
    await advance(clock, 1_000);
    expect(provider.calls).toHaveLength(1);
    expect(second.slot.error).toBeUndefined();
    // Admission sees the call waiting: no new chat starts while the hold lasts.
    expect(scheduler.status().queueLength).toBe(1);
    const status = scheduler.status();
    expect(status.providerHoldMs).toBeGreaterThan(3_500_000);
  });

  it('a TPM 429 lowers the TPM limit (a request 429 the concurrency and RPM)', async () => {
    const { clock, provider, scheduler, call } = setup({ LLM_MAX_CONCURRENT: '10', LLM_MAX_TPM: '100000' });
    provider.failures.push(
      new ProviderError('rate_limited', 'Too many tokens', {
        status: 429,
        providerCode: 'RateLimitExceeded.EndpointTPMExceeded',
        retryAfterMs: 10,
      }),
    );
    const limited = call();
    await advance(clock, 100, 10);
    provider.calls.at(-1)?.resolve();
    await limited.promise;
    expect(scheduler.status().effective).toEqual({ maxConcurrency: 10, maxRPM: 1000, maxTPM: 70_000 });
  });
});

describe('the chat deadline', () => {
  it('caps every call of the chat: past it a queued call fails with chat_timeout, without a start', async () => {
    const { clock, provider, scheduler } = setup({ LLM_MAX_CONCURRENT: '1', LLM_TIMEOUT: '60000' });
    const blocker = scheduler.complete(meta('host', 'b'), request, { signal: new AbortController().signal });
    await drain();
    const chatDeadline = clock.now() + 5000;
    const outcome = scheduler
      .complete(meta('planner', 'u', { chatDeadline }), request, { signal: new AbortController().signal })
      .catch((error: AppError) => error);
    await advance(clock, 5000, 500);
    expect(await outcome).toMatchObject({ code: 'chat_timeout' });
    expect(provider.calls).toHaveLength(1);
    expect(scheduler.status()).toMatchObject({ queueLength: 0 });
    provider.calls[0].resolve();
    await blocker;
  });
});

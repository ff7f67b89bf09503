import { ManualClock } from '../../api/clock';
import type { AppError } from '../../api/errors';
import { createLlmScheduler } from '../../api/llm/create-llm-scheduler';
import type { LlmCallOutcome } from '../../api/llm/llm-gateway';
import { ProviderError } from '../../api/llm/provider';
import { FakeProvider, advance, drain, llmConfig, meta, request } from './helpers';

/**
 * Refusals only a person can end (a used-up quota, a spending limit, an unpaid bill, a refused key)
 * against transient ones: the first cost at most one provider call per cool-down, whatever the
 * number of chats, and say why; the second slow the start rate and are retried.
 */

const COOL_DOWN_MS = 300_000;

function setup(env: Record<string, string> = {}) {
  const clock = new ManualClock(0);
  const provider = new FakeProvider(clock);
  const scheduler = createLlmScheduler({
    config: llmConfig({
      LLM_MAX_CONCURRENT: '4',
      LLM_MAX_RPM: '1000',
      LLM_TIMEOUT: '10000',
      LLM_UNAVAILABLE_COOLDOWN_MS: String(COOL_DOWN_MS),
      ...env,
    }),
    provider,
    clock,
    random: () => 0,
    burstWindowMs: 0,
  });
  const call = (userId = 'u1') => {
    const slot: { value?: LlmCallOutcome; error?: AppError } = {};
    const promise = scheduler
      .complete(meta('host', userId), request, { signal: new AbortController().signal })
      .then(
        (value) => void (slot.value = value),
        (error: AppError) => void (slot.error = error),
      );
    return { slot, promise };
  };
  return { clock, provider, scheduler, call };
}

const quotaExceeded = () =>
  new ProviderError(
    'quota_exhausted',
    'Provider error 429 QuotaExceeded: The quota of this endpoint is used up',
    {
      status: 429,
      providerCode: 'QuotaExceeded',
      unusable: 'quota_exhausted',
    },
  );

describe('refusals only a person can end', () => {
  it('QuotaExceeded costs one provider call, not four per chat: twelve chats, one request', async () => {
    const { clock, provider, scheduler, call } = setup();
    // Every call the provider ever sees is refused.
    for (let index = 0; index < 20; index++) provider.failures.push(quotaExceeded());
    const chats = [];
    for (let index = 0; index < 12; index++) {
      const chat = call(`u${index}`);
      chats.push(chat);
      await advance(clock, 100);
    }
    await Promise.all(chats.map((chat) => chat.promise));
    expect(provider.calls).toHaveLength(1);
    for (const chat of chats) {
      expect(chat.slot.error?.code).toBe('provider_quota_exhausted');
      expect(chat.slot.error?.message).toMatch(/QuotaExceeded/);
    }
    // Not a rate limit: no AIMD decrease, no retry, no 429 hold.
    const status = scheduler.status();
    expect(status.counters).toMatchObject({
      retries: 0,
      rateLimited: 0,
      aimdDecreases: 0,
      providerRefusals: 1,
    });
    expect(status.effective).toMatchObject({ maxConcurrency: 4, maxRPM: 1000 });
    expect(status.breaker).toBe('open');
    expect(status.unavailable).toMatchObject({ reason: 'quota_exhausted', providerCode: 'QuotaExceeded' });
    expect(scheduler.providerAvailability().unavailable?.probeInMs).toBeGreaterThan(COOL_DOWN_MS - 2_000);
  });

  it('is re-probed by one call per cool-down; a success closes it and clears the reason', async () => {
    const { clock, provider, scheduler, call } = setup();
    provider.failures.push(quotaExceeded(), quotaExceeded());
    await Promise.all([call().promise, advance(clock, 100)]);
    expect(scheduler.breakerState()).toBe('open');
    // Still refused after the cool-down: the one probe re-opens it, with the same reason.
    await advance(clock, COOL_DOWN_MS);
    expect(scheduler.breakerState()).toBe('half_open');
    const probe = call('u2');
    const other = call('u3');
    await advance(clock, 100);
    await Promise.all([probe.promise, other.promise]);
    expect(provider.calls).toHaveLength(2);
    expect(probe.slot.error?.code).toBe('provider_quota_exhausted');
    expect(other.slot.error?.code).toBe('provider_quota_exhausted');
    expect(scheduler.status().unavailable?.reason).toBe('quota_exhausted');
    // A person raised the quota: the next probe succeeds.
    await advance(clock, COOL_DOWN_MS);
    const recovered = call('u4');
    await advance(clock, 10);
    provider.calls.at(-1)!.resolve();
    await recovered.promise;
    expect(recovered.slot.value?.text).toBe('ok');
    expect(scheduler.breakerState()).toBe('closed');
    expect(scheduler.status().unavailable).toBeUndefined();
    expect(scheduler.providerAvailability()).toEqual({ unavailable: undefined });
  });

  it.each([
    ['spending_limit', 'SetLimitExceeded', 429],
    ['account_overdue', 'AccountOverdueError', 403],
    ['auth', 'AuthenticationError', 401],
    ['model_not_found', 'InvalidEndpointOrModel.NotFound', 404],
  ] as const)('%s (%s) opens the breaker with its reason too', async (reason, code, status) => {
    const { clock, provider, scheduler, call } = setup();
    provider.failures.push(new ProviderError('auth', code, { status, providerCode: code, unusable: reason }));
    const first = call();
    await advance(clock, 100);
    await first.promise;
    expect(first.slot.error?.code).toBe('provider_quota_exhausted');
    expect(scheduler.status().unavailable).toMatchObject({ reason, providerCode: code });
  });

  it('a bad request is not retried and is no verdict on the provider', async () => {
    const { clock, provider, scheduler, call } = setup();
    for (let index = 0; index < 10; index++)
      provider.failures.push(new ProviderError('bad_request', 'context too long', { status: 400 }));
    const chats = Array.from({ length: 10 }, (_, index) => call(`u${index}`));
    await advance(clock, 100);
    await Promise.all(chats.map((chat) => chat.promise));
    expect(provider.calls).toHaveLength(10);
    expect(chats.every((chat) => chat.slot.error?.code === 'internal')).toBe(true);
    expect(scheduler.breakerState()).toBe('closed');
    expect(scheduler.status().counters.retries).toBe(0);
  });
});

describe('burst refusals', () => {
  it('RequestBurstTooFast lowers the start rate only (not concurrency), is retried, and the rate climbs back', async () => {
    const { clock, provider, scheduler, call } = setup({ LLM_MAX_CONCURRENT: '10' });
    provider.failures.push(
      new ProviderError('burst', 'Provider error 429 RequestBurstTooFast', {
        status: 429,
        providerCode: 'RequestBurstTooFast',
      }),
    );
    const limited = call();
    await advance(clock, 2_000, 100);
    provider.calls.at(-1)?.resolve();
    await limited.promise;
    expect(limited.slot.value?.text).toBe('ok');
    expect(provider.calls).toHaveLength(2);
    const lowered = scheduler.status().effective;
    expect(lowered.maxConcurrency).toBe(10);
    expect(lowered.maxRPM).toBeLessThan(1000);
    // Quiet for a while: the start rate ramps back step by step, not at once.
    await advance(clock, 60_000, 5_000);
    await drain();
    const later = call('u2');
    await advance(clock, 10);
    provider.calls.at(-1)?.resolve();
    await later.promise;
    const recovered = scheduler.status().effective.maxRPM;
    expect(recovered).toBeGreaterThan(lowered.maxRPM);
  });
});

describe('usage reported while streaming', () => {
  it('a call cut short settles its TPM reservation on the usage it reported, not the estimate', async () => {
    const { clock, provider, scheduler } = setup({ LLM_MAX_TPM: '100000', LLM_MAX_OUTPUT_TOKENS: '4000' });
    const controller = new AbortController();
    const cut = scheduler
      .complete(meta('host'), request, { signal: controller.signal })
      .catch((error: AppError) => error);
    await advance(clock, 10);
    // Reserved: the prompt's estimate plus the 4000-token output allowance.
    expect(scheduler.queue.limiterSnapshot().tokensLastMinute).toBeGreaterThan(4000);
    provider.calls[0].delta('Partial');
    provider.calls[0].usage({ promptTokens: 12, completionTokens: 30 });
    controller.abort();
    expect(await cut).toMatchObject({ code: 'cancelled' });
    expect(scheduler.queue.limiterSnapshot().tokensLastMinute).toBe(42);
  });
});

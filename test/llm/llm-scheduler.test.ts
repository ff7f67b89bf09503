import { ManualClock } from '../../api/clock';
import { AppError } from '../../api/errors';
import { createLlmScheduler, type CreateLlmSchedulerOptions } from '../../api/llm/create-llm-scheduler';
import type { SchedulerEvent } from '../../api/llm/llm-scheduler';
import type { LlmCallOutcome } from '../../api/llm/llm-gateway';
import { ProviderError } from '../../api/llm/provider';
import { FakeProvider, advance, drain, llmConfig, maxInWindow, meta, request } from './helpers';

function setup(env: Record<string, string> = {}, options: Partial<CreateLlmSchedulerOptions> = {}) {
  const clock = new ManualClock(0);
  const provider = new FakeProvider(clock);
  const events: SchedulerEvent[] = [];
  const scheduler = createLlmScheduler({
    config: llmConfig({ LLM_MAX_CONCURRENT: '2', LLM_MAX_RPM: '1000', LLM_TIMEOUT: '60000', ...env }),
    provider,
    clock,
    random: () => 0.5,
    metrics: { record: (event) => events.push(event) },
    burstWindowMs: 0,
    ...options,
  });
  const outcomes: Array<{ value?: LlmCallOutcome; error?: AppError }> = [];
  const call = (
    agent: Parameters<typeof meta>[0] = 'host',
    userId = 'u1',
    extra: Parameters<typeof meta>[2] = {},
    signal = new AbortController().signal,
    onDelta?: (text: string) => void,
  ) => {
    const slot: { value?: LlmCallOutcome; error?: AppError } = {};
    outcomes.push(slot);
    const promise = scheduler.complete(meta(agent, userId, extra), request, { signal, onDelta }).then(
      (value) => {
        slot.value = value;
      },
      (error: AppError) => {
        slot.error = error;
      },
    );
    return { slot, promise };
  };
  return { clock, provider, scheduler, events, call };
}

const rateLimited = (retryAfterMs?: number) =>
  new ProviderError('rate_limited', '429', { status: 429, retryAfterMs });
const serverError = () => new ProviderError('server', '503', { status: 503 });

describe('LlmScheduler limits', () => {
  it('keeps concurrency and every rolling minute of starts within the limits under heavy load', async () => {
    const { clock, provider, scheduler, call } = setup(
      { LLM_MAX_CONCURRENT: '3', LLM_MAX_RPM: '20', LLM_TIMEOUT: '3600000' },
      { burstWindowMs: 10_000 },
    );
    provider.latencyMs = 100;
    let maxOpen = 0;
    const calls = Array.from({ length: 120 }, (_, i) => call(i % 2 ? 'planner' : 'host', `u${i % 7}`));
    for (let step = 0; step < 420 && calls.some((c) => !c.slot.value && !c.slot.error); step++) {
      await advance(clock, 1_000, 100);
      maxOpen = Math.max(maxOpen, provider.open.length, scheduler.status().activeRequests);
    }
    expect(calls.every((c) => c.slot.value)).toBe(true);
    const starts = provider.calls.map((c) => c.startedAt);
    expect(starts).toHaveLength(120);
    expect(maxInWindow(starts, 60_000)).toBeLessThanOrEqual(20);
    expect(maxInWindow(starts, 10_000)).toBeLessThanOrEqual(4);
    expect(maxOpen).toBeLessThanOrEqual(3);
    expect(scheduler.status()).toMatchObject({ totalProcessed: 120, totalSuccess: 120, activeRequests: 0 });
  });

  it('holds the concurrency limit while calls are in flight', async () => {
    const { provider, scheduler, call } = setup({ LLM_MAX_CONCURRENT: '2' });
    for (let i = 0; i < 5; i++) call('host', `u${i}`);
    await drain();
    expect(provider.open).toHaveLength(2);
    expect(scheduler.status()).toMatchObject({ activeRequests: 2, queueLength: 3, currentConcurrency: 2 });
    provider.open[0].resolve();
    await drain();
    expect(provider.open).toHaveLength(2);
    expect(scheduler.status().queueLength).toBe(2);
  });
});

describe('LlmScheduler timeouts and cancellation', () => {
  it('aborts an in-flight call at its deadline and rejects llm_timeout', async () => {
    const { clock, provider, scheduler, call } = setup({ LLM_TIMEOUT: '1000' });
    const { slot } = call();
    await advance(clock, 999);
    expect(provider.calls[0].signal.aborted).toBe(false);
    await advance(clock, 1);
    expect(provider.calls[0].signal.aborted).toBe(true);
    expect(slot.error?.code).toBe('llm_timeout');
    expect(scheduler.status()).toMatchObject({ activeRequests: 0, totalTimeout: 1 });
  });

  it('the deadline covers queue wait: a queued call times out with queue_timeout', async () => {
    const { clock, scheduler, call } = setup({ LLM_TIMEOUT: '1000', LLM_MAX_CONCURRENT: '1' });
    call();
    const { slot } = call('host', 'u2');
    await advance(clock, 1_000);
    expect(slot.error?.code).toBe('queue_timeout');
    expect(scheduler.status()).toMatchObject({ queueLength: 0, activeRequests: 0 });
  });

  it('caller abort cancels the provider call and releases the slot exactly once', async () => {
    const { provider, scheduler, call } = setup({ LLM_MAX_CONCURRENT: '1' });
    const controller = new AbortController();
    const first = call('host', 'u1', {}, controller.signal);
    const second = call('host', 'u2');
    await drain();
    controller.abort(new AppError('cancelled'));
    await drain();
    expect(provider.calls[0].signal.aborted).toBe(true);
    expect(first.slot.error?.code).toBe('cancelled');
    // The freed slot went to the next call: concurrency is 1, not 0 and not 2.
    expect(scheduler.status().activeRequests).toBe(1);
    provider.calls[1].resolve();
    await second.promise;
    expect(scheduler.queue.limiterSnapshot().active).toBe(0);
    expect(scheduler.status().totalCancelled).toBe(1);
  });

  it('an abort landing just after the slot is granted stops the call before the provider, once', async () => {
    const controller = new AbortController();
    const { provider, scheduler, call } = setup(
      { LLM_MAX_CONCURRENT: '1' },
      {
        // 'start' is emitted after the slot is granted and before the attempt listens for aborts.
        metrics: {
          record: (event) => {
            if (event.type === 'start' && !controller.signal.aborted)
              controller.abort(new AppError('cancelled'));
          },
        },
      },
    );
    const aborted = call('host', 'u1', {}, controller.signal);
    await aborted.promise;
    expect(aborted.slot.error?.code).toBe('cancelled');
    expect(provider.calls).toHaveLength(0);
    expect(scheduler.queue.limiterSnapshot().active).toBe(0);
    // The slot came back exactly once: the limit of one still holds.
    call('host', 'u2');
    call('host', 'u3');
    await drain();
    expect(provider.open).toHaveLength(1);
    expect(scheduler.status()).toMatchObject({ activeRequests: 1, queueLength: 1, totalCancelled: 1 });
  });
});

describe('LlmScheduler retries', () => {
  it('retries a 429 no earlier than Retry-After', async () => {
    const { clock, provider, call, events } = setup({}, { random: () => 0 });
    provider.failures.push(rateLimited(3_000));
    const { slot } = call();
    await drain();
    expect(provider.calls).toHaveLength(1);
    await advance(clock, 2_999);
    expect(provider.calls).toHaveLength(1);
    await advance(clock, 1);
    expect(provider.calls).toHaveLength(2);
    expect(provider.calls[1].startedAt - provider.calls[0].startedAt).toBeGreaterThanOrEqual(3_000);
    provider.calls[1].resolve();
    await drain();
    expect(slot.value?.attempts).toBe(2);
    expect(events.filter((event) => event.type === 'retry')).toHaveLength(1);
  });

  it('adds jitter on top of Retry-After, never below it', async () => {
    const { clock, provider, call } = setup({}, { random: () => 0.999, retry: { baseDelayMs: 1_000 } });
    provider.failures.push(rateLimited(2_000));
    call();
    await advance(clock, 2_998);
    expect(provider.calls).toHaveLength(1);
    await advance(clock, 1);
    expect(provider.calls).toHaveLength(2);
  });

  it('never retries after the first streamed delta', async () => {
    const { clock, provider, call } = setup();
    const deltas: string[] = [];
    const { slot } = call('host', 'u1', {}, new AbortController().signal, (text) => deltas.push(text));
    await drain();
    provider.calls[0].delta('Hel');
    provider.calls[0].reject(serverError());
    await advance(clock, 30_000);
    expect(deltas).toEqual(['Hel']);
    expect(provider.calls).toHaveLength(1);
    expect(slot.error?.code).toBe('llm_unavailable');
  });

  it('gives up with provider_rate_limited after its attempts, within the deadline', async () => {
    const { clock, provider, call } = setup({}, { retry: { maxAttempts: 3 } });
    provider.failures.push(rateLimited(100), rateLimited(100), rateLimited(100));
    const { slot } = call();
    await advance(clock, 10_000, 100);
    expect(provider.calls).toHaveLength(3);
    expect(slot.error?.code).toBe('provider_rate_limited');
  });

  it('does not retry when the backoff would pass the deadline', async () => {
    const { clock, provider, call } = setup({ LLM_TIMEOUT: '5000' });
    provider.failures.push(rateLimited(10_000));
    const { slot } = call();
    await advance(clock, 100);
    expect(slot.error?.code).toBe('provider_rate_limited');
    expect(slot.error?.retryAfterMs).toBe(10_000);
    expect(provider.calls).toHaveLength(1);
  });

  it('does not retry a bad request', async () => {
    const { provider, call } = setup();
    provider.failures.push(new ProviderError('bad_request', '400', { status: 400 }));
    const { slot } = call();
    await drain();
    await drain();
    expect(provider.calls).toHaveLength(1);
    expect(slot.error?.code).toBe('internal');
  });
});

describe('LlmScheduler AIMD', () => {
  it('shrinks effective limits on a 429 and grows them back after quiet periods', async () => {
    const { clock, provider, scheduler, call } = setup(
      { LLM_MAX_CONCURRENT: '10', LLM_MAX_RPM: '100' },
      { aimd: { quietPeriodMs: 10_000, rpmStep: 10 } },
    );
    provider.failures.push(rateLimited(1_000), rateLimited(1_000));
    call();
    call('host', 'u2');
    await drain();
    expect(scheduler.status().effective).toEqual({ maxConcurrency: 7, maxRPM: 70, maxTPM: 0 });
    expect(scheduler.status().counters).toMatchObject({ rateLimited: 2, aimdDecreases: 1 });
    await advance(clock, 10_000, 1_000);
    expect(scheduler.status().effective).toEqual({ maxConcurrency: 8, maxRPM: 80, maxTPM: 0 });
    await advance(clock, 60_000, 10_000);
    expect(scheduler.status().effective).toEqual({ maxConcurrency: 10, maxRPM: 100, maxTPM: 0 });
  });
});

describe('LlmScheduler circuit breaker', () => {
  it('opens on provider failures, fails fast with llm_unavailable, probes half-open and closes', async () => {
    const { clock, provider, scheduler, call } = setup(
      {},
      { retry: { maxAttempts: 1 }, breaker: { volumeThreshold: 3, resetTimeoutMs: 5_000 } },
    );
    for (let i = 0; i < 3; i++) provider.failures.push(serverError());
    const failing = [call(), call(), call()];
    await Promise.all(failing.map((c) => c.promise));
    expect(failing.map((c) => c.slot.error?.code)).toEqual([
      'llm_unavailable',
      'llm_unavailable',
      'llm_unavailable',
    ]);
    expect(scheduler.breakerState()).toBe('open');

    const fast = call();
    await fast.promise;
    expect(fast.slot.error?.code).toBe('llm_unavailable');
    expect(fast.slot.error?.retryAfterMs).toBe(5_000);
    expect(provider.calls).toHaveLength(3);

    await advance(clock, 5_000);
    expect(scheduler.breakerState()).toBe('half_open');
    const probe = call();
    const during = call('host', 'u2');
    await drain();
    // One probe; the other call is held, not failed.
    expect(provider.calls).toHaveLength(4);
    expect(during.slot).toEqual({});
    provider.calls[3].resolve();
    await probe.promise;
    expect(probe.slot.value).toBeDefined();
    expect(scheduler.breakerState()).toBe('closed');
    await drain();
    expect(provider.calls).toHaveLength(5);
    provider.calls[4].resolve();
    await during.promise;
    expect(during.slot.value).toBeDefined();
  });

  it('does not count aborts or bad requests as provider failures', async () => {
    const { scheduler, provider, call } = setup(
      {},
      { retry: { maxAttempts: 1 }, breaker: { volumeThreshold: 2 } },
    );
    for (let i = 0; i < 4; i++) provider.failures.push(new ProviderError('bad_request', '400'));
    await Promise.all([call(), call(), call(), call()].map((c) => c.promise));
    expect(scheduler.breakerState()).toBe('closed');
    scheduler.close();
  });
});

describe('LlmScheduler admitted chats and control', () => {
  it('never sheds a later call of an admitted chat at the queue bound (tool rounds, revisions)', async () => {
    const { scheduler, call } = setup({ LLM_MAX_CONCURRENT: '1', LLM_QUEUE_MAX: '3' });
    const admission = await scheduler.admit({ userId: 'a', runId: 'run-a' });
    call('host', 'busy');
    await drain();
    const fillers = [1, 2, 3].map((n) => call('host', `f${n}`));
    await drain();
    expect(scheduler.status().queueLength).toBe(3);
    const stranger = call('host', 'x', { runId: 'run-x' });
    // However many calls the chat makes, all are served in turn.
    const chat = [1, 2, 3].map(() => call('planner', 'a', { runId: 'run-a' }));
    await drain();
    expect(stranger.slot.error?.code).toBe('overloaded');
    expect(chat.map((c) => c.slot.error)).toEqual([undefined, undefined, undefined]);
    admission.release();
    scheduler.clear();
    await Promise.all([...fillers, ...chat].map((c) => c.promise));
  });

  it('pause holds queued calls; resume dispatches them; clear rejects with queue_cleared', async () => {
    const { provider, scheduler, call } = setup();
    scheduler.pause();
    const a = call();
    const b = call('planner', 'u2');
    await drain();
    expect(provider.calls).toHaveLength(0);
    expect(scheduler.items().map((item) => item.state)).toEqual(['queued', 'queued']);
    scheduler.resume();
    await drain();
    expect(provider.calls).toHaveLength(2);
    provider.calls.forEach((c) => c.resolve());
    await Promise.all([a.promise, b.promise]);

    scheduler.pause();
    const c = call();
    const d = call();
    await drain();
    expect(scheduler.clear()).toBe(2);
    await Promise.all([c.promise, d.promise]);
    expect([c.slot.error?.code, d.slot.error?.code]).toEqual(['queue_cleared', 'queue_cleared']);
    expect(scheduler.status().queueLength).toBe(0);
  });

  it('pause holds: new chats are still admitted and wait; refusing them is an explicit choice', async () => {
    const { provider, scheduler, call } = setup();
    scheduler.pause();
    await expect(scheduler.admit({ userId: 'u', runId: 'run-u' })).resolves.toBeDefined();
    expect(scheduler.isRefusingNewChats).toBe(false);
    const waiting = call('host', 'u', { runId: 'run-u' });
    await drain();
    expect(provider.calls).toHaveLength(0);
    // Admission (the chat line) asks this before it lets a new chat in.
    scheduler.pause({ refuseNewChats: true });
    expect(scheduler.isRefusingNewChats).toBe(true);
    expect(scheduler.status()).toMatchObject({ refusingNewChats: true, paused: true });
    scheduler.resume();
    expect(scheduler.isRefusingNewChats).toBe(false);
    await drain();
    expect(provider.calls).toHaveLength(1);
    provider.calls[0].resolve();
    await waiting.promise;
    expect(waiting.slot.value?.text).toBe('ok');
  });
});

describe('LlmScheduler circuit breaker and the queue', () => {
  const breakerSetup = (env: Record<string, string> = {}) =>
    setup(env, { retry: { maxAttempts: 1 }, breaker: { volumeThreshold: 2, resetTimeoutMs: 5_000 } });

  it('counts in-flight timeouts (a hung provider) as provider failures, caller aborts not', async () => {
    const { clock, provider, scheduler, call } = breakerSetup({
      LLM_TIMEOUT: '1000',
      LLM_MAX_CONCURRENT: '5',
    });
    provider.abortAsAbortError = true;
    const callers = [new AbortController(), new AbortController()];
    const abandoned = callers.map((controller, i) => call('host', `c${i}`, {}, controller.signal));
    await drain();
    callers.forEach((controller) => controller.abort(new AppError('cancelled')));
    await Promise.all(abandoned.map((c) => c.promise));
    expect(abandoned.map((c) => c.slot.error?.code)).toEqual(['cancelled', 'cancelled']);
    expect(scheduler.breakerState()).toBe('closed');

    // The aborts were no verdict on the provider (not recorded at all): 3 timeouts of 3 calls open it.
    const hung = [call('host', 'h1'), call('host', 'h2'), call('host', 'h3')];
    await advance(clock, 1_000);
    expect(hung.map((c) => c.slot.error?.code)).toEqual(['llm_timeout', 'llm_timeout', 'llm_timeout']);
    expect(scheduler.breakerState()).toBe('open');
    const fast = call();
    await fast.promise;
    expect(fast.slot.error?.code).toBe('llm_unavailable');
    expect(provider.calls).toHaveLength(5);
  });

  it('fails queued calls fast when the breaker opens, without taking a permit or a start', async () => {
    const { provider, scheduler, call } = breakerSetup({ LLM_MAX_CONCURRENT: '10', LLM_MAX_RPM: '2' });
    const inFlight = [call('host', 'u1'), call('host', 'u2')];
    const queued = [call('host', 'u3'), call('planner', 'u4'), call('critic', 'u5')];
    await drain();
    expect(scheduler.status()).toMatchObject({ activeRequests: 2, queueLength: 3, currentRPM: 2 });
    provider.calls.forEach((c) => c.reject(serverError()));
    await Promise.all([...inFlight, ...queued].map((c) => c.promise));
    expect(scheduler.breakerState()).toBe('open');
    expect(queued.map((c) => c.slot.error?.code)).toEqual([
      'llm_unavailable',
      'llm_unavailable',
      'llm_unavailable',
    ]);
    expect(provider.calls).toHaveLength(2);
    expect(scheduler.queue.limiterSnapshot()).toMatchObject({ active: 0, startsLastMinute: 2 });
    expect(scheduler.status().counters.breakerRejections).toBe(3);
  });

  it('half-open: one probe at a time, the others held; a failed probe fails them without starts', async () => {
    const { clock, provider, scheduler, call } = breakerSetup({ LLM_MAX_CONCURRENT: '10' });
    const failing = [call('host', 'u1'), call('host', 'u2')];
    await drain();
    provider.calls.forEach((c) => c.reject(serverError()));
    await Promise.all(failing.map((c) => c.promise));
    await advance(clock, 5_000);
    expect(scheduler.breakerState()).toBe('half_open');

    // The first probe's caller leaves: no verdict, the next held call becomes the probe.
    const leaving = new AbortController();
    const first = call('host', 'p1', {}, leaving.signal);
    const held = [call('host', 'p2'), call('planner', 'p3'), call('critic', 'p4')];
    await drain();
    expect(provider.calls).toHaveLength(3);
    expect(scheduler.queue.limiterSnapshot()).toMatchObject({ active: 1, startsLastMinute: 3 });
    leaving.abort(new AppError('cancelled'));
    await first.promise;
    await drain();
    expect(scheduler.breakerState()).toBe('half_open');
    expect(provider.calls).toHaveLength(4);
    expect(provider.open).toHaveLength(1);

    provider.calls[3].reject(serverError());
    await Promise.all(held.map((c) => c.promise));
    expect(scheduler.breakerState()).toBe('open');
    expect(held.map((c) => c.slot.error?.code)).toEqual([
      'llm_unavailable',
      'llm_unavailable',
      'llm_unavailable',
    ]);
    expect(provider.calls).toHaveLength(4);
    expect(scheduler.queue.limiterSnapshot()).toMatchObject({ active: 0, startsLastMinute: 4 });
  });
});

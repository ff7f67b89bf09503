import { ManualClock } from '../../api/clock';
import type { AppError } from '../../api/errors';
import { createLlmScheduler } from '../../api/llm/create-llm-scheduler';
import type { LlmCallOutcome } from '../../api/llm/llm-gateway';
import { FirstByteTimeoutPolicy } from '../../api/llm/policies/first-byte-timeout-policy';
import { FakeProvider, advance, llmConfig, meta, request } from './helpers';

/**
 * A provider that accepts calls and never answers is found within the first-byte timeout, not at
 * the call's deadline: the call fails as a provider failure, the breaker counts it and the
 * scheduler reports it at once. A call streaming reasoning is making progress. On a ManualClock.
 */

function setup(env: Record<string, string> = {}) {
  const clock = new ManualClock(0);
  const provider = new FakeProvider(clock);
  provider.reportsFirstByte = true;
  const scheduler = createLlmScheduler({
    config: llmConfig({
      LLM_MAX_CONCURRENT: '10',
      LLM_MAX_RPM: '1000',
      LLM_TIMEOUT: '60000',
      LLM_FIRST_BYTE_TIMEOUT_MS: '5000',
      LLM_FIRST_BYTE_TIMEOUT_FLOOR_MS: '1000',
      ...env,
    }),
    provider,
    clock,
    random: () => 0,
    burstWindowMs: 0,
    breaker: { volumeThreshold: 3 },
  });
  const call = (userId = 'u1', chatDeadline?: number) => {
    const slot: { value?: LlmCallOutcome; error?: AppError } = {};
    const reasoning: string[] = [];
    const promise = scheduler
      .complete(meta('host', userId, chatDeadline ? { chatDeadline } : {}), request, {
        signal: new AbortController().signal,
        onReasoning: (text) => reasoning.push(text),
      })
      .then(
        (value) => void (slot.value = value),
        (error: AppError) => void (slot.error = error),
      );
    return { slot, promise, reasoning };
  };
  return { clock, provider, scheduler, call };
}

describe('the first-byte timeout', () => {
  it('fails a hanging call after the cold timeout (not the 60 s deadline), as a provider failure seen at once', async () => {
    const { clock, provider, scheduler, call } = setup();
    // The chat's own deadline is the call's: the silence still reads as the provider's, not the chat's.
    const hanging = call('u1', 60_000);
    await advance(clock, 4_900, 100);
    expect(hanging.slot.error).toBeUndefined();
    await advance(clock, 200, 100);
    await hanging.promise;
    expect(hanging.slot.error?.code).toBe('llm_timeout');
    expect(hanging.slot.error?.message).toMatch(/no byte within 5000 ms/);
    expect(provider.calls).toHaveLength(1);
    expect(provider.calls[0].signal.aborted).toBe(true);
    expect(scheduler.status().counters.firstByteTimeouts).toBe(1);
    // Health reads this at once, before the breaker's window fills.
    expect(scheduler.providerAvailability().recentFailure?.message).toMatch(/first-byte timeout/);
  });

  it('opens the breaker after a few hanging calls: later chats fail fast instead of waiting', async () => {
    const { clock, provider, scheduler, call } = setup();
    const hanging = [call('a'), call('b'), call('c')];
    await advance(clock, 5_100, 100);
    await Promise.all(hanging.map((entry) => entry.promise));
    expect(scheduler.breakerState()).toBe('open');
    const later = call('d');
    await advance(clock, 10);
    await later.promise;
    expect(later.slot.error?.code).toBe('llm_unavailable');
    expect(provider.calls).toHaveLength(3);
  });

  it('a call streaming reasoning is making progress: no first-byte timeout while it thinks', async () => {
    const { clock, provider, call } = setup();
    const thinking = call();
    await advance(clock, 1_000);
    provider.calls[0].reasoning('Let me think. ');
    // Long after the first-byte timeout, still thinking, then answering.
    await advance(clock, 20_000, 1_000);
    provider.calls[0].reasoning('Done thinking.');
    provider.calls[0].delta('Answer');
    provider.calls[0].resolve({ text: 'Answer', reasoning: 'Let me think. Done thinking.' });
    await thinking.promise;
    expect(thinking.slot.error).toBeUndefined();
    expect(thinking.slot.value?.text).toBe('Answer');
    expect(thinking.reasoning).toEqual(['Let me think. ', 'Done thinking.']);
  });

  it('calls answered in one piece (not streamed) are not timed on their first byte', async () => {
    const { clock, provider, scheduler } = setup();
    const result = scheduler.complete(
      meta('host'),
      { ...request, stream: false },
      {
        signal: new AbortController().signal,
      },
    );
    await advance(clock, 20_000, 1_000);
    provider.calls[0].resolve();
    await expect(result).resolves.toMatchObject({ text: 'ok' });
  });
});

describe('FirstByteTimeoutPolicy', () => {
  it('measures the endpoint: 3 × the p99 of its first bytes, within [floor, ceiling], cold until 20 are known', () => {
    const clock = new ManualClock(0);
    const policy = new FirstByteTimeoutPolicy({ clock, coldMs: 15_000, floorMs: 2_000, ceilingMs: 60_000 });
    const record = (ms: number) => (policy as unknown as { record(ms: number): void }).record(ms);
    for (let index = 0; index < 19; index++) record(400);
    expect(policy.timeoutMs()).toBe(15_000);
    record(400);
    // 3 × 400 ms is under the floor.
    expect(policy.timeoutMs()).toBe(2_000);
    for (let index = 0; index < 20; index++) record(1_500);
    expect(policy.timeoutMs()).toBe(4_500);
    for (let index = 0; index < 256; index++) record(30_000);
    expect(policy.timeoutMs()).toBe(60_000);
  });
});

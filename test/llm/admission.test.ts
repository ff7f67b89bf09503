import { AdmissionControl, type AdmissionInputs } from '../../api/llm/admission';
import { AppError } from '../../api/errors';

function inputs(overrides: Partial<AdmissionInputs> = {}): AdmissionInputs {
  return {
    admittedChats: 0,
    callsPerChat: 4,
    limits: { concurrency: 50, rpm: 6000 },
    latencyMs: 350,
    slowdown: 1,
    callTimeoutMs: 60_000,
    chatTimeoutMs: 120_000,
    chatTargetMs: 30_000,
    priorityAllowanceMs: 15_000,
    queueMax: 5000,
    providerHoldMs: 0,
    ...overrides,
  };
}

function refusal(control: AdmissionControl, given: AdmissionInputs): AppError {
  try {
    control.decide(given);
  } catch (error) {
    return error as AppError;
  }
  throw new Error('expected a refusal');
}

describe('AdmissionControl', () => {
  const control = new AdmissionControl();

  it('admits on a cold start while a chat finds a free slot, and asks to measure beyond that', () => {
    expect(control.decide(inputs({ latencyMs: undefined, admittedChats: 49 }))).toEqual({
      action: 'admit',
      estimate: undefined,
    });
    expect(control.decide(inputs({ latencyMs: undefined, admittedChats: 50 }))).toEqual({
      action: 'measure',
    });
  });

  it('refuses on a cold start only what the rate limit alone already forbids', () => {
    // 4 calls × 40 chats at 1 call/s is 160 s: no latency could make that fit a 30 s target.
    expect(
      control.decide(
        inputs({ latencyMs: undefined, admittedChats: 39, limits: { concurrency: 50, rpm: 60 } }),
      ),
    ).toEqual({
      action: 'measure',
    });
  });

  it('admits all 300 chats of a burst the quota serves within the target (C=50, 6000 rpm, 0.35 s calls)', () => {
    // mu = min(100, 50 / 0.35) = 100 calls/s; 300 chats × 4 calls take 12 s.
    const decision = control.decide(inputs({ admittedChats: 299 }));
    expect(decision.action).toBe('admit');
    expect(decision.action === 'admit' && decision.estimate?.estimatedChatMs).toBe(12_000);
  });

  it('refuses past the chat target with Retry-After for the excess chats and the estimated wait', () => {
    // C=2, 1 s calls: mu = 2 calls/s; 20 chats × 4 calls = 40 s > 30 s.
    const given = inputs({ admittedChats: 19, limits: { concurrency: 2, rpm: 6000 }, latencyMs: 1000 });
    const error = refusal(control, given);
    expect(error.code).toBe('overloaded');
    expect(error.message).toMatch(/LLM_CHAT_TARGET_MS; estimated 40 s/);
    // 5 of the 20 chats are excess; one finishes every 2 s.
    expect(error.retryAfterMs).toBe(10_000);
    expect(error.details?.estimatedWaitMs).toBe(10_000);
    expect(control.decide({ ...given, admittedChats: 14 }).action).toBe('admit');
  });

  it('keeps the model time apart from the slowdown, so the slowdown is measured against the model', () => {
    const given = inputs({ admittedChats: 5, limits: { concurrency: 2, rpm: 6000 }, latencyMs: 1000 });
    const plain = control.estimate(given, 1000);
    const slowed = control.estimate({ ...given, slowdown: 2 }, 1000);
    // 6 chats on mu = 2 calls/s: each call takes 3 s; 4 calls.
    expect(plain.modelChatMs).toBe(12_000);
    expect(slowed.modelChatMs).toBe(12_000);
    expect(slowed.estimatedChatMs).toBe(24_000);
  });

  it('learned slowdown makes the same load refuse sooner', () => {
    const given = inputs({ admittedChats: 11, limits: { concurrency: 2, rpm: 6000 }, latencyMs: 1000 });
    expect(control.decide(given).action).toBe('admit');
    expect(refusal(control, { ...given, slowdown: 1.5 }).code).toBe('overloaded');
  });

  it('refuses when one call would wait past LLM_TIMEOUT, target off', () => {
    // mu = 0.5 calls/s: 10 chats make each call wait 19 s + 2 s > 0.9 × 10 s − 3 s.
    const given = inputs({
      admittedChats: 9,
      limits: { concurrency: 1, rpm: 6000 },
      latencyMs: 2000,
      callTimeoutMs: 10_000,
      chatTargetMs: 0,
      chatTimeoutMs: 0,
      priorityAllowanceMs: 3000,
    });
    expect(refusal(control, given).message).toMatch(/within LLM_TIMEOUT/);
    expect(control.decide({ ...given, admittedChats: 2 }).action).toBe('admit');
  });

  it('never refuses an idle server, however slow the provider', () => {
    expect(control.decide(inputs({ latencyMs: 50_000 })).action).toBe('admit');
  });

  it('bounds the admitted chats by the queue bound', () => {
    expect(refusal(control, inputs({ admittedChats: 10, queueMax: 10 })).code).toBe('overloaded');
  });

  it('refuses while an operator refuses new chats, and while the provider holds every start too long', () => {
    expect(refusal(control, inputs({ refusing: true })).details).toEqual({ paused: true });
    const held = refusal(control, inputs({ providerHoldMs: 3_600_000 }));
    expect(held.retryAfterMs).toBe(3_600_000);
    expect(control.decide(inputs({ providerHoldMs: 2000 })).action).toBe('admit');
  });
});

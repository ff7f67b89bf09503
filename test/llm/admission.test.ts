import { AdmissionControl, type AdmissionInputs } from '../../api/llm/admission';
import type { AppError } from '../../api/errors';

const base: AdmissionInputs = {
  queued: 0,
  active: 0,
  reserved: 0,
  queueMax: 100,
  limits: { concurrency: 10, rpm: 600 },
  measuredLatencyMs: undefined,
  timeoutMs: 60_000,
  priorityAllowanceMs: 0,
};

function refusal(fn: () => void): AppError | undefined {
  try {
    fn();
  } catch (error) {
    return error as AppError;
  }
  return undefined;
}

describe('AdmissionControl', () => {
  it('uses mu = min(RPM/60, C/L) with a prior latency before measurements', () => {
    const admission = new AdmissionControl({ priorLatencyMs: 2_000 });
    // min(600/60 = 10, 10/2 = 5) = 5 calls/s
    expect(admission.estimate(base, 4).serviceRatePerSecond).toBe(5);
    expect(admission.estimate({ ...base, measuredLatencyMs: 500 }, 4).serviceRatePerSecond).toBe(10);
  });

  it('admits with free capacity and estimates no wait', () => {
    const admission = new AdmissionControl();
    expect(admission.admit({ ...base, active: 5 }, 4)).toMatchObject({
      estimatedWaitMs: 0,
      estimatedFinishMs: 8_000,
    });
  });

  it('refuses when the first call could not finish before its deadline, with Retry-After', () => {
    const admission = new AdmissionControl({ priorLatencyMs: 2_000, deadlineHeadroom: 1 });
    // 309 ahead, 300 past the concurrency limit, at 5/s: 60 s wait + 2 s call > 60 s.
    const error = refusal(() => admission.admit({ ...base, queueMax: 1_000, queued: 299, active: 10 }, 4));
    expect(error?.code).toBe('overloaded');
    expect(error?.details?.estimatedWaitMs).toBe(60_000);
    expect(error?.message).toBe(
      'The server cannot finish this chat within its deadline (estimated wait 60 s)',
    );
    expect(error?.retryAfterMs).toBe(2_000);
    // Just inside the budget: admitted.
    expect(() => admission.admit({ ...base, queueMax: 1_000, queued: 280, active: 10 }, 4)).not.toThrow();
  });

  it('refuses when the chat’s calls would not fit under the queue bound', () => {
    const admission = new AdmissionControl();
    const error = refusal(() => admission.admit({ ...base, queued: 98 }, 4));
    expect(error?.code).toBe('overloaded');
    expect(error?.retryAfterMs).toBeGreaterThanOrEqual(1_000);
  });

  it('counts the calls admitted chats still owe as work ahead', () => {
    const admission = new AdmissionControl({ priorLatencyMs: 2_000, deadlineHeadroom: 1 });
    // Nothing queued yet, but 300 calls reserved by admitted chats: 300 - 10 + 1 = 291 ahead at 5/s.
    const error = refusal(() => admission.admit({ ...base, queueMax: 1_000, reserved: 300 }, 4));
    expect(error?.code).toBe('overloaded');
    expect(error?.details?.workAhead).toBe(300);
    expect(() => admission.admit({ ...base, queueMax: 1_000, reserved: 280 }, 4)).not.toThrow();
  });

  it('leaves room for higher-class work that may overtake a call by priority', () => {
    const admission = new AdmissionControl({ priorLatencyMs: 2_000, deadlineHeadroom: 1 });
    // 200 ahead at 5/s = 38 s wait + 2 s call = 40 s: inside 60 s, outside 60 s − 30 s allowance.
    const inputs = { ...base, queueMax: 1_000, queued: 200 };
    expect(() => admission.admit(inputs, 4)).not.toThrow();
    expect(refusal(() => admission.admit({ ...inputs, priorityAllowanceMs: 30_000 }, 4))?.code).toBe(
      'overloaded',
    );
  });

  it('counts reserved calls against the queue bound (they bypass it once enqueued)', () => {
    const admission = new AdmissionControl();
    // 90 queued + 8 reserved + 4 expected > 100, though 90 + 4 alone would fit.
    const error = refusal(() => admission.admit({ ...base, queued: 90, reserved: 8 }, 4));
    expect(error?.code).toBe('overloaded');
    expect(error?.message).toMatch(/^The LLM queue is full \(estimated wait \d+ s\)$/);
    expect(error?.details?.estimatedWaitMs).toEqual(expect.any(Number));
    expect(() => admission.admit({ ...base, queued: 90, reserved: 6 }, 4)).not.toThrow();
  });

  it('refuses every chat while an operator has paused the queue, with Retry-After', () => {
    const admission = new AdmissionControl();
    const error = refusal(() => admission.admit({ ...base, paused: true }, 1));
    expect(error?.code).toBe('overloaded');
    expect(error?.message).toMatch(/paused by an operator/);
    expect(error?.retryAfterMs).toBe(5_000);
    const configured = new AdmissionControl({ pausedRetryAfterMs: 30_000 });
    expect(refusal(() => configured.admit({ ...base, paused: true }, 1))?.retryAfterMs).toBe(30_000);
    expect(() => configured.admit({ ...base, paused: false }, 1)).not.toThrow();
  });

  it('with a chat target, refuses chats that the admitted ones would make slower than it', () => {
    const admission = new AdmissionControl({ priorLatencyMs: 2_000 });
    // mu = 5 calls/s, k = 4: N admitted chats finish one every 0.8 s; 30 s fits 37 chats in all.
    const inputs = { ...base, queueMax: 10_000, chatTargetMs: 30_000 };
    expect(admission.admit({ ...inputs, admittedChats: 36 }, 4).estimatedSharedMs).toBe(29_600);
    const error = refusal(() => admission.admit({ ...inputs, admittedChats: 40 }, 4));
    expect(error?.code).toBe('overloaded');
    expect(error?.message).toMatch(/finish within 30 s \(estimated 33 s\)/);
    expect(error?.retryAfterMs).toBe(2_800 + 800);
    // Without a target the same load is admitted (each call still fits its deadline).
    expect(() => admission.admit({ ...inputs, chatTargetMs: 0, admittedChats: 40 }, 4)).not.toThrow();
  });

  it('never refuses an idle server because the provider alone is slower than the chat target', () => {
    const admission = new AdmissionControl();
    // L = 20 s, k = 4: one chat takes 80 s even alone; the target of 30 s cannot apply.
    const slow = { ...base, measuredLatencyMs: 20_000, chatTargetMs: 30_000, admittedChats: 0 };
    expect(() => admission.admit(slow, 4)).not.toThrow();
  });
});

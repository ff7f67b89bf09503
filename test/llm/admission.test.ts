import { AdmissionControl, type AdmissionInputs } from '../../api/llm/admission';
import { AdmissionReservations } from '../../api/llm/admission-reservations';
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
    // mu = 5 calls/s, k = 4: N admitted chats finish one every 0.8 s, so a new one takes (N + 1)·0.8 s
    // on average and 1.35× that at the 95th percentile: 30 s admits 27 chats in all.
    const inputs = { ...base, queueMax: 10_000, chatTargetMs: 30_000 };
    expect(admission.admit({ ...inputs, admittedChats: 26 }, 4).estimatedSharedMs).toBe(21_600);
    const error = refusal(() => admission.admit({ ...inputs, admittedChats: 30 }, 4));
    expect(error?.code).toBe('overloaded');
    // 31 · 0.8 s = 24.8 s mean, 33.5 s at p95: 3.5 s over, i.e. 2.6 s of mean, plus one chat's 0.8 s.
    expect(error?.message).toMatch(/finish within 30 s \(estimated 34 s\)/);
    expect(error?.retryAfterMs).toBe(Math.ceil((24_800 * 1.35 - 30_000) / 1.35 + 800));
    // Without a target the same load is admitted (each call still fits its deadline).
    expect(() => admission.admit({ ...inputs, chatTargetMs: 0, admittedChats: 30 }, 4)).not.toThrow();
  });

  it('estimates with the measured calls per chat when chats make more than expected', () => {
    const admission = new AdmissionControl({ priorLatencyMs: 2_000 });
    // 21 chats at 5 calls each, mu = 5/s: 21 s mean, 28.4 s at p95; at 6 calls each, 34 s: refused.
    const inputs = { ...base, queueMax: 10_000, chatTargetMs: 30_000, admittedChats: 20 };
    expect(admission.admit({ ...inputs, callsPerChat: 5 }, 4).estimatedSharedMs).toBe(21_000);
    expect(() => admission.admit({ ...inputs, callsPerChat: 6 }, 4)).toThrow(/estimated 35 s/);
  });

  it('never refuses an idle server because the provider alone is slower than the chat target', () => {
    const admission = new AdmissionControl();
    // L = 20 s, k = 4: one chat takes 80 s even alone; the target of 30 s cannot apply.
    const slow = { ...base, measuredLatencyMs: 20_000, chatTargetMs: 30_000, admittedChats: 0 };
    expect(() => admission.admit(slow, 4)).not.toThrow();
  });
});

describe('AdmissionReservations', () => {
  it('counts reserved calls until enqueued, and learns how many calls chats really make', () => {
    const reservations = new AdmissionReservations();
    for (let chat = 0; chat < 10; chat++) {
      const admission = reservations.reserve(`run-${chat}`, 4);
      // Each chat makes 5 calls: the fifth is not covered by the reservation.
      const covered = Array.from({ length: 5 }, () => reservations.consume(`run-${chat}`));
      expect(covered).toEqual([true, true, true, true, false]);
      admission.release();
    }
    expect(reservations.total).toBe(0);
    expect(reservations.chats).toBe(0);
    expect(reservations.meanCallsPerChat()).toBe(5);
    // A chat refused or cancelled before any call does not count towards the mean.
    reservations.reserve('idle', 4).release();
    expect(reservations.meanCallsPerChat()).toBe(5);
    expect(reservations.meanCallsPerChat(11)).toBeUndefined();
  });
});

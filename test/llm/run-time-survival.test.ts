import fc from 'fast-check';
import { ManualClock } from '../../api/clock';
import { ChatAdmission } from '../../api/llm/admission';
import { LineMeter } from '../../api/llm/line-meter';
import { ProviderRoom } from '../../api/llm/provider-room';
import { RunLedger } from '../../api/llm/run-ledger';
import { percentile } from '../../api/llm/rolling-histogram';
import { byRunTime, runTimeQuantile } from '../../api/llm/run-time-survival';

const runTimes = fc.array(fc.integer({ min: 1, max: 100_000 }), { minLength: 1, maxLength: 300 });
const fractions = fc.constantFrom(0.5, 0.9, 0.95, 0.99);

describe('run-time quantiles counting the chats still running', () => {
  test('with every chat completed, the estimate is the plain percentile', () => {
    fc.assert(
      fc.property(runTimes, fractions, (times, fraction) => {
        const sorted = [...times].sort((a, b) => a - b);
        const observations = sorted.map((ms) => ({ ms, completed: true }));
        expect(runTimeQuantile(observations, fraction)).toBe(percentile(sorted, fraction));
      }),
    );
  });

  test('chats still running never lower the estimate below the completed-only percentile', () => {
    fc.assert(
      fc.property(runTimes, runTimes, fractions, (done, running, fraction) => {
        const observations = [
          ...done.map((ms) => ({ ms, completed: true })),
          ...running.map((ms) => ({ ms, completed: false })),
        ].sort(byRunTime);
        const completedOnly = percentile(
          [...done].sort((a, b) => a - b),
          fraction,
        );
        expect(runTimeQuantile(observations, fraction)).toBeGreaterThanOrEqual(completedOnly);
      }),
    );
  });

  test('nothing completed: nothing measured', () => {
    expect(runTimeQuantile([{ ms: 5_000, completed: false }], 0.5)).toBeUndefined();
    expect(runTimeQuantile([], 0.99)).toBeUndefined();
  });

  test('early in a burst (short chats done, long ones running) the 99th percentile is at least the runs still going', () => {
    const clock = new ManualClock(0);
    const meter = new LineMeter({ clock, maxAgeMs: 60_000 });
    for (let index = 0; index < 20; index++) meter.runStarted(`chat-${index}`);
    clock.advance(8_000);
    for (let index = 0; index < 4; index++) meter.runEnded(`chat-${index}`, true);
    clock.advance(12_000);
    // Four short chats completed in 8 s; sixteen have run 20 s and go on.
    expect(meter.runTimeMs(0.99)).toBe(20_000);
    expect(meter.runTimeMs(0.5)).toBe(20_000);
    expect(meter.meanRunTimeMs()).toBe(8_000);

    // So a chat at the head with 15 s left is not started to time out; the completed-only figure
    // (8 s) would have started it.
    const admission = new ChatAdmission({
      maxRunning: 100,
      chatTimeoutMs: 60_000,
      enabled: true,
      room: new ProviderRoom(1, clock),
      meter,
      ledger: new RunLedger({ clock, maxAgeMs: 60_000 }),
    });
    const tooLate = admission.checkStart(clock.now() + 15_000, clock.now());
    expect(tooLate.start ? undefined : tooLate.refusal.code).toBe('overloaded');
    expect(admission.checkStart(clock.now() + 25_000, clock.now())).toEqual({ start: true });
  });

  test('a chat that ended without completing counts as at least as long as it ran', () => {
    const clock = new ManualClock(0);
    const meter = new LineMeter({ clock, maxAgeMs: 600_000 });
    meter.runStarted('quick');
    meter.runStarted('timed-out');
    clock.advance(2_000);
    meter.runEnded('quick', true);
    clock.advance(58_000);
    meter.runEnded('timed-out', false);
    expect(meter.runTimeMs(0.99)).toBe(60_000);
    expect(meter.runTimeMs(0.5)).toBe(2_000);
  });
});

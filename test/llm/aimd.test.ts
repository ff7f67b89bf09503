import { ManualClock } from '../../api/clock';
import { Aimd } from '../../api/llm/aimd';

describe('Aimd', () => {
  it('shrinks both limits on a 429, once per cooldown however many 429s arrive', () => {
    const clock = new ManualClock(0);
    const aimd = new Aimd({
      clock,
      maxConcurrent: 10,
      maxRpm: 100,
      cooldownMs: 5_000,
      quietPeriodMs: 10_000,
    });
    expect(aimd.onRateLimited()).toBe(true);
    expect(aimd.limits()).toEqual({ concurrency: 7, rpm: 70 });
    for (let i = 0; i < 20; i++) expect(aimd.onRateLimited()).toBe(false);
    expect(aimd.limits()).toEqual({ concurrency: 7, rpm: 70 });
    clock.advance(5_000);
    expect(aimd.onRateLimited()).toBe(true);
    expect(aimd.limits()).toEqual({ concurrency: 4, rpm: 49 });
  });

  it('never goes below 1', () => {
    const clock = new ManualClock(0);
    const aimd = new Aimd({ clock, maxConcurrent: 2, maxRpm: 2, cooldownMs: 0 });
    for (let i = 0; i < 10; i++) aimd.onRateLimited();
    expect(aimd.limits()).toEqual({ concurrency: 1, rpm: 1 });
  });

  it('grows back additively after quiet periods, up to the configured limits', () => {
    const clock = new ManualClock(0);
    const aimd = new Aimd({ clock, maxConcurrent: 10, maxRpm: 100, quietPeriodMs: 10_000, rpmStep: 5 });
    aimd.onRateLimited();
    clock.advance(9_999);
    expect(aimd.limits()).toEqual({ concurrency: 7, rpm: 70 });
    clock.advance(1);
    expect(aimd.limits()).toEqual({ concurrency: 8, rpm: 75 });
    clock.advance(20_000);
    expect(aimd.limits()).toEqual({ concurrency: 10, rpm: 85 });
    clock.advance(1_000_000);
    expect(aimd.limits()).toEqual({ concurrency: 10, rpm: 100 });
  });

  it('a 429 during recovery restarts the quiet period', () => {
    const clock = new ManualClock(0);
    const aimd = new Aimd({
      clock,
      maxConcurrent: 10,
      maxRpm: 100,
      cooldownMs: 60_000,
      quietPeriodMs: 10_000,
    });
    aimd.onRateLimited();
    clock.advance(8_000);
    aimd.onRateLimited(); // inside the cooldown: no decrease, but not quiet either
    clock.advance(8_000);
    expect(aimd.limits().concurrency).toBe(7);
    clock.advance(2_000);
    expect(aimd.limits().concurrency).toBe(8);
  });
});

import { ManualClock } from '../../api/clock';
import { InMemoryLimiter, type Permit } from '../../api/llm/limiter';

function started(decision: ReturnType<InMemoryLimiter['tryStart']>): Permit {
  if (!decision.started) throw new Error('expected a start');
  return decision.permit;
}

describe('InMemoryLimiter', () => {
  it('holds concurrency at the limit and answers "wait for a release" (no timer) when full', () => {
    const clock = new ManualClock(0);
    const limiter = new InMemoryLimiter({
      clock,
      maxConcurrent: 2,
      maxRpm: 1000,
      maxTpm: 0,
      burstWindowMs: 0,
    });
    const a = started(limiter.tryStart(1));
    started(limiter.tryStart(1));
    expect(limiter.tryStart(1)).toEqual({ started: false, retryAt: null });
    limiter.release(a);
    limiter.release(a);
    expect(limiter.snapshot().active).toBe(1);
    started(limiter.tryStart(1));
    expect(limiter.snapshot().active).toBe(2);
  });

  it('answers with the time the rate window opens', () => {
    const clock = new ManualClock(0);
    const limiter = new InMemoryLimiter({ clock, maxConcurrent: 10, maxRpm: 2, maxTpm: 0, burstWindowMs: 0 });
    limiter.release(started(limiter.tryStart(1)));
    clock.advance(1_000);
    limiter.release(started(limiter.tryStart(1)));
    expect(limiter.tryStart(1)).toEqual({ started: false, retryAt: 60_000 });
    expect(limiter.snapshot().startsLastMinute).toBe(2);
  });

  it('reserves tokens up front and settles them with real usage', () => {
    const clock = new ManualClock(0);
    const limiter = new InMemoryLimiter({
      clock,
      maxConcurrent: 10,
      maxRpm: 1000,
      maxTpm: 1_000,
      burstWindowMs: 0,
    });
    const first = started(limiter.tryStart(900));
    expect(limiter.tryStart(200)).toEqual({ started: false, retryAt: 60_000 });
    limiter.settle(first, 300);
    expect(limiter.snapshot().tokensLastMinute).toBe(300);
    started(limiter.tryStart(200));
    expect(limiter.snapshot().tokensLastMinute).toBe(500);
  });

  it('enforces the effective (AIMD) limits, never above the configured ones', () => {
    const clock = new ManualClock(0);
    let effective = { concurrency: 1, rpm: 1000 };
    const limiter = new InMemoryLimiter({
      clock,
      maxConcurrent: 3,
      maxRpm: 1000,
      maxTpm: 0,
      burstWindowMs: 0,
      effectiveLimits: () => effective,
    });
    started(limiter.tryStart(1));
    expect(limiter.tryStart(1).started).toBe(false);
    effective = { concurrency: 99, rpm: 1000 };
    started(limiter.tryStart(1));
    started(limiter.tryStart(1));
    expect(limiter.tryStart(1).started).toBe(false);
  });
});

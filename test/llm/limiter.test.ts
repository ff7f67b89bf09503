import { ManualClock, systemClock } from '../../api/clock';
import { Aimd } from '../../api/llm/aimd';
import { InMemoryLimiter, type Limiter, type Permit } from '../../api/llm/limiter';
import { describeLimiterBehaviour } from './limiter-behaviour';

function started(decision: ReturnType<InMemoryLimiter['tryStartNow']>): Permit {
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
    const a = started(limiter.tryStartNow(1));
    started(limiter.tryStartNow(1));
    expect(limiter.tryStartNow(1)).toEqual({ started: false, retryAt: null });
    void limiter.release(a);
    void limiter.release(a);
    expect(limiter.snapshot().active).toBe(1);
    started(limiter.tryStartNow(1));
    expect(limiter.snapshot().active).toBe(2);
  });

  it('answers with the time the rate window opens (60 s + the 500 ms safety margin)', () => {
    const clock = new ManualClock(0);
    const limiter = new InMemoryLimiter({ clock, maxConcurrent: 10, maxRpm: 2, maxTpm: 0, burstWindowMs: 0 });
    void limiter.release(started(limiter.tryStartNow(1)));
    clock.advance(1_000);
    void limiter.release(started(limiter.tryStartNow(1)));
    expect(limiter.tryStartNow(1)).toEqual({ started: false, retryAt: 60_500 });
    expect(limiter.snapshot().startsLastMinute).toBe(2);
  });

  it('keeps a safety margin at the window edge so jitter cannot put R+1 starts in a provider minute', () => {
    const clock = new ManualClock(0);
    const limiter = new InMemoryLimiter({ clock, maxConcurrent: 10, maxRpm: 1, maxTpm: 0, burstWindowMs: 0 });
    void limiter.release(started(limiter.tryStartNow(1)));
    // Exactly 60 s later a provider whose clock saw the first start a little late would count two.
    clock.advance(60_000);
    expect(limiter.tryStartNow(1)).toEqual({ started: false, retryAt: 60_500 });
    // The status page still reports the nominal minute.
    expect(limiter.snapshot().startsLastMinute).toBe(0);
    clock.advance(500);
    expect(limiter.tryStartNow(1).started).toBe(true);

    const exact = new InMemoryLimiter({
      clock: new ManualClock(0),
      maxConcurrent: 10,
      maxRpm: 1,
      maxTpm: 0,
      burstWindowMs: 0,
      windowMarginMs: 0,
    });
    started(exact.tryStartNow(1));
    expect(exact.tryStartNow(1)).toEqual({ started: false, retryAt: 60_000 });
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
    const first = started(limiter.tryStartNow(900));
    expect(limiter.tryStartNow(200)).toEqual({ started: false, retryAt: 60_500 });
    void limiter.settle(first, 300);
    expect(limiter.snapshot().tokensLastMinute).toBe(300);
    started(limiter.tryStartNow(200));
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
      aimd: { limits: () => effective },
    });
    started(limiter.tryStartNow(1));
    expect(limiter.tryStartNow(1).started).toBe(false);
    effective = { concurrency: 99, rpm: 1000 };
    started(limiter.tryStartNow(1));
    started(limiter.tryStartNow(1));
    expect(limiter.tryStartNow(1).started).toBe(false);
  });
});

describe('systemClock', () => {
  afterEach(() => jest.restoreAllMocks());

  it('is monotonic: a wall-clock jump back neither rewinds it nor reopens the rate window', () => {
    const limiter = new InMemoryLimiter({
      clock: systemClock,
      maxConcurrent: 10,
      maxRpm: 1,
      maxTpm: 0,
      burstWindowMs: 0,
    });
    const before = systemClock.now();
    started(limiter.tryStartNow(1));
    // The wall clock steps back an hour (NTP, an operator).
    const wall = Date.now();
    jest.spyOn(Date, 'now').mockReturnValue(wall - 3_600_000);
    expect(systemClock.now()).toBeGreaterThanOrEqual(before);
    expect(limiter.tryStartNow(1).started).toBe(false);
    // Or forward an hour: with Date.now() the window would look empty and let a second start through.
    jest.spyOn(Date, 'now').mockReturnValue(wall + 3_600_000);
    expect(limiter.tryStartNow(1).started).toBe(false);
    expect(limiter.snapshot().startsLastMinute).toBe(1);
  });
});

describe('InMemoryLimiter (limiter behaviour suite)', () => {
  describeLimiterBehaviour(() => {
    const clock = new ManualClock(0);
    const windowMs = 60_000;
    const policies = new Map<Limiter, Aimd>();
    return {
      windowMs,
      async create(spec) {
        const aimd = new Aimd({
          clock,
          maxConcurrent: spec.maxConcurrent,
          maxRpm: spec.maxRpm,
          maxTpm: spec.maxTpm,
        });
        const limiter = new InMemoryLimiter({
          clock,
          maxConcurrent: spec.maxConcurrent,
          maxRpm: spec.maxRpm,
          maxTpm: spec.maxTpm ?? 0,
          burstWindowMs: spec.burstWindowMs ?? windowMs / 6,
          windowMarginMs: 0,
          providerWindowMs: windowMs,
          aimd,
        });
        policies.set(limiter, aimd);
        return Promise.resolve(limiter);
      },
      pass: (ms) => clock.advanceAsync(ms),
      now: () => clock.now(),
      rateLimited(limiter, kind) {
        policies.get(limiter)!.onRateLimited(kind);
        return Promise.resolve();
      },
      destroy: () => Promise.resolve(),
    };
  });
});

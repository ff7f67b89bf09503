import type { RateLimitKind } from '../../api/llm/aimd';
import type { Limiter, Permit, StartDecision } from '../../api/llm/limiter';

/** What one test asks of an adapter. */
export interface LimiterSpec {
  maxConcurrent: number;
  maxRpm: number;
  maxTpm?: number;
  /** The spreading sub-window; 0 = off. */
  burstWindowMs?: number;
}

/**
 * How the behaviour suite drives an adapter. Time is the adapter's: the in-memory harness advances
 * a ManualClock, the Redis one lets real time pass (Redis TIME cannot be faked), so the suite
 * speaks of "a window" (`windowMs`, short for Redis) and asserts order and counts, never exact times.
 */
export interface LimiterHarness {
  /** The provider window the adapters are built with (no safety margin). */
  windowMs: number;
  create(spec: LimiterSpec): Promise<Limiter>;
  /** Lets `ms` pass on the adapter's clock. */
  pass(ms: number): Promise<void>;
  /** The adapter's clock, in the units of StartDecision.retryAt. */
  now(): number;
  /** A provider 429 reported to the AIMD policy the adapter enforces. */
  rateLimited(limiter: Limiter, kind: RateLimitKind): Promise<void>;
  destroy(): Promise<void>;
}

function permitOf(decision: StartDecision): Permit {
  if (!decision.started) throw new Error(`expected a start, got ${JSON.stringify(decision)}`);
  return decision.permit;
}

/** The Limiter contract, written once and run against every adapter (in-memory and Redis). */
export function describeLimiterBehaviour(harness: () => LimiterHarness): void {
  let h: LimiterHarness;
  beforeEach(() => {
    h = harness();
  });
  afterEach(async () => {
    await h.destroy();
  });

  test('holds concurrency at the limit; a release gives the slot back, twice is a no-op', async () => {
    const limiter = await h.create({ maxConcurrent: 2, maxRpm: 1000 });
    const first = permitOf(await limiter.tryStart(1));
    permitOf(await limiter.tryStart(1));
    const refused = await limiter.tryStart(1);
    expect(refused.started).toBe(false);
    await limiter.release(first);
    await limiter.release(first);
    permitOf(await limiter.tryStart(1));
    expect((await limiter.tryStart(1)).started).toBe(false);
    expect(limiter.snapshot().active).toBe(2);
  });

  test('a start asked right after a release, before the release settles, finds the slot free', async () => {
    const limiter = await h.create({ maxConcurrent: 1, maxRpm: 1000, burstWindowMs: 0 });
    const held = permitOf(await limiter.tryStart(1));
    // The queue asks for the next call at once; the release's answer comes later.
    const released = limiter.release(held);
    const next = await limiter.tryStart(1);
    await released;
    expect(next.started).toBe(true);
    expect(limiter.snapshot().active).toBe(1);
  });

  test('counts starts in a rolling window, not a fixed one, and says when it opens', async () => {
    const limiter = await h.create({ maxConcurrent: 100, maxRpm: 2, burstWindowMs: 0 });
    const startedAt = h.now();
    await limiter.release(permitOf(await limiter.tryStart(1)));
    await h.pass(h.windowMs / 2);
    await limiter.release(permitOf(await limiter.tryStart(1)));
    const refused = await limiter.tryStart(1);
    if (refused.started) throw new Error('a third start inside the window');
    // It opens when the first start leaves the window, not at a fixed boundary.
    expect(refused.retryAt).not.toBeNull();
    // (Slack for the Redis clock offset, measured on a loaded machine's round trips.)
    expect(refused.retryAt!).toBeGreaterThanOrEqual(startedAt + h.windowMs - 300);
    expect(limiter.snapshot().startsLastMinute).toBe(2);
    await h.pass(Math.max(0, refused.retryAt! - h.now()) + 20);
    // The first start has left; the second is still inside: exactly one more.
    await limiter.release(permitOf(await limiter.tryStart(1)));
    expect((await limiter.tryStart(1)).started).toBe(false);
  });

  test('spreads starts: at most ceil(rpm × sub-window / window) per sub-window', async () => {
    const limiter = await h.create({ maxConcurrent: 100, maxRpm: 12, burstWindowMs: h.windowMs / 6 });
    await limiter.release(permitOf(await limiter.tryStart(1)));
    await limiter.release(permitOf(await limiter.tryStart(1)));
    const refused = await limiter.tryStart(1);
    if (refused.started) throw new Error('a burst past the sub-window allowance');
    expect(refused.retryAt).not.toBeNull();
    await h.pass(Math.max(0, refused.retryAt! - h.now()) + 20);
    permitOf(await limiter.tryStart(1));
  });

  test('reserves tokens at start and settles them with the real usage', async () => {
    const limiter = await h.create({ maxConcurrent: 100, maxRpm: 1000, maxTpm: 1000, burstWindowMs: 0 });
    const first = permitOf(await limiter.tryStart(900));
    expect((await limiter.tryStart(200)).started).toBe(false);
    await limiter.settle(first, 300);
    permitOf(await limiter.tryStart(200));
    expect(limiter.snapshot().tokensLastMinute).toBe(500);
  });

  test('a provider-wide hold stops every start until it ends, and never shortens', async () => {
    const limiter = await h.create({ maxConcurrent: 100, maxRpm: 1000, burstWindowMs: 0 });
    const holdMs = Math.max(300, h.windowMs / 4);
    await limiter.holdStarts(holdMs);
    await limiter.holdStarts(1);
    const held = await limiter.tryStart(1);
    if (held.started) throw new Error('started during a hold');
    expect(held.retryAt).not.toBeNull();
    expect(limiter.snapshot().heldUntil).toBeGreaterThan(h.now());
    await h.pass(Math.max(0, held.retryAt! - h.now()) + 20);
    permitOf(await limiter.tryStart(1));
    expect(limiter.snapshot().heldUntil).toBe(0);
  });

  test('enforces the AIMD limits a 429 lowered, never above the configured ones', async () => {
    const limiter = await h.create({ maxConcurrent: 10, maxRpm: 1000, burstWindowMs: 0 });
    await limiter.release(permitOf(await limiter.tryStart(1)));
    await h.rateLimited(limiter, 'requests');
    const permits: Permit[] = [];
    for (;;) {
      const decision = await limiter.tryStart(1);
      if (!decision.started) break;
      permits.push(decision.permit);
      if (permits.length > 10) break;
    }
    // 10 × 0.7: the shared decrease applies to every instance's next start.
    expect(permits.length).toBe(7);
    expect(limiter.snapshot().limits.concurrency).toBe(7);
    expect(limiter.snapshot().configured.concurrency).toBe(10);
  });

  test('starts several calls in one ask, each checked against the starts before it', async () => {
    // Concurrency: 3 of 5 asked; the other two wait for a release.
    const slots = await h.create({ maxConcurrent: 3, maxRpm: 1000, burstWindowMs: 0 });
    const three = await slots.tryStartMany(1, undefined, 5);
    expect(three.permits).toHaveLength(3);
    expect(new Set(three.permits.map((permit) => permit.id)).size).toBe(3);
    expect(slots.snapshot().active).toBe(3);
    expect((await slots.tryStartMany(1, undefined, 2)).permits).toHaveLength(0);
    await slots.release(three.permits[1]);
    expect((await slots.tryStartMany(1, undefined, 2)).permits).toHaveLength(1);
    // RPM: the window's last two starts, then when it opens.
    const rate = await h.create({ maxConcurrent: 100, maxRpm: 2, burstWindowMs: 0 });
    const two = await rate.tryStartMany(1, undefined, 4);
    expect(two.permits).toHaveLength(2);
    expect(two.retryAt).not.toBeNull();
    expect(rate.snapshot().startsLastMinute).toBe(2);
    // Tokens: each start reserves its estimate; 3 × 300 fit in 1,000, a fourth does not.
    const tokens = await h.create({ maxConcurrent: 100, maxRpm: 1000, maxTpm: 1000, burstWindowMs: 0 });
    expect((await tokens.tryStartMany(300, undefined, 5)).permits).toHaveLength(3);
    expect(tokens.snapshot().tokensLastMinute).toBe(900);
    // Every start asked for granted: nothing to wait for.
    const all = await h.create({ maxConcurrent: 100, maxRpm: 1000, burstWindowMs: 0 });
    expect(await all.tryStartMany(1, undefined, 4)).toEqual({ permits: expect.any(Array), retryAt: null });
    expect(all.snapshot().active).toBe(4);
  });

  test('says how many starts the rate windows allow right now, concurrency aside', async () => {
    // The minute: 5 starts; 2 made, 3 left (slots are plentiful: they do not count).
    const minute = await h.create({ maxConcurrent: 100, maxRpm: 5, burstWindowMs: 0 });
    await minute.tryStartMany(1, undefined, 2);
    expect(minute.snapshot().startsAvailable).toBe(3);
    // The spreading sub-window: 12 a minute, 2 per sixth of it; both taken, none left now.
    const spread = await h.create({ maxConcurrent: 100, maxRpm: 12, burstWindowMs: h.windowMs / 6 });
    await spread.tryStart(1);
    expect(spread.snapshot().startsAvailable).toBe(1);
    await spread.tryStart(1);
    expect(spread.snapshot().startsAvailable).toBe(0);
  });
}

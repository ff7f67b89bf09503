import { flushMicrotasks, ManualClock } from '../../api/clock';
import {
  InMemoryLimiter,
  type LimiterSnapshot,
  type Permit,
  type StartBatch,
  type StartDecision,
} from '../../api/llm/limiter';
import { FailSafeLimiter, type SharedLimiter } from '../../api/llm/redis/fail-safe-limiter';
import { QuotaShare } from '../../api/llm/redis/quota-share';
import type { ClusterLoad } from '../../api/llm/redis/cluster-load';

/**
 * The fail-safe's state machine on a ManualClock, with a shared limiter that the test makes fail
 * and recover: the share, what the cluster had used, the hand-over and the end of recovery.
 */
class FakeShared implements SharedLimiter {
  readonly windowMs = 60_500;
  readonly instanceId = 'me';
  down = false;
  load: ClusterLoad = { active: 0, startsLastMinute: 0, tokensLastMinute: 0, observedAt: 0 };
  adopted: Array<{ id: string; startedAt: number; tokens: number; running: boolean }> = [];
  released: string[] = [];
  allow = true;
  private next = 1;

  constructor(private readonly clock: ManualClock) {}

  /** Rejects as ioredis does (a rejected promise, never a synchronous throw). */
  private check(): Promise<void> {
    return this.down ? Promise.reject(new Error('connect ECONNREFUSED')) : Promise.resolve();
  }
  /** The next starts get no answer in time (ioredis's timeout), though Redis may still be there. */
  timeouts = 0;
  pingFails = false;
  async tryStart(estimatedTokens: number): Promise<StartDecision> {
    if (this.timeouts > 0) {
      this.timeouts--;
      throw new Error('Command timed out');
    }
    await this.check();
    if (!this.allow) return Promise.resolve({ started: false, retryAt: this.clock.now() + 25 });
    return Promise.resolve({
      started: true,
      permit: { id: `me:${this.next++}`, startedAt: this.clock.now(), estimatedTokens },
    });
  }
  async tryStartMany(
    estimatedTokens: number,
    _orderKey: number | undefined,
    count: number,
  ): Promise<StartBatch> {
    const permits: Permit[] = [];
    while (permits.length < count) {
      const decision = await this.tryStart(estimatedTokens);
      if (!decision.started) return { permits, retryAt: decision.retryAt };
      permits.push(decision.permit);
    }
    return { permits, retryAt: null };
  }
  /** Releases Redis did not hear about: the shared limiter sends them again (`reconcile`). */
  private missed: string[] = [];
  async release(permit: Permit): Promise<void> {
    if (this.down) this.missed.push(String(permit.id));
    await this.check();
    this.released.push(String(permit.id));
  }
  settle(): Promise<void> {
    return this.check();
  }
  holdStarts(): Promise<void> {
    return this.check();
  }
  snapshot(): LimiterSnapshot {
    const limits = { concurrency: 6, rpm: 30 };
    return {
      active: this.load.active,
      startsLastMinute: this.load.startsLastMinute,
      tokensLastMinute: 0,
      limits,
      configured: { ...limits, tpm: 0 },
      heldUntil: 0,
    };
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  ping(): Promise<void> {
    return this.pingFails ? Promise.reject(new Error('Command timed out')) : this.check();
  }
  /** Set: the next adoption waits for it (Redis slow to answer, the hand-over still on its way). */
  adoptGate?: Promise<void>;
  async adopt(
    entries: Array<{ id: string; startedAt: number; tokens: number; running: boolean }>,
  ): Promise<void> {
    const gate = this.adoptGate;
    this.adoptGate = undefined;
    if (gate) await gate;
    await this.check();
    this.adopted.push(...entries);
  }
  renewals = 0;
  async renewLeases(): Promise<void> {
    await this.check();
    this.renewals++;
  }
  permitFor(id: string, startedAt: number, estimatedTokens: number): Permit {
    return { id, startedAt, estimatedTokens };
  }
  leaseCounts() {
    return { held: 0, unreleased: this.missed.length };
  }
  async reconcile(): Promise<void> {
    await this.check();
    this.released.push(...this.missed.splice(0));
  }
  clusterLoad(): ClusterLoad {
    return this.load;
  }
}

function setup(instances = 3, callTimeoutMs = 10_000, othersBackSince?: (since: number) => boolean) {
  const clock = new ManualClock(0);
  const shared = new FakeShared(clock);
  const share = new QuotaShare({ shared, instances: () => instances });
  const local = new InMemoryLimiter({
    clock,
    maxConcurrent: 6,
    maxRpm: 30,
    maxTpm: 0,
    burstWindowMs: 0,
    aimd: share,
  });
  const modes: string[] = [];
  const limiter = new FailSafeLimiter({
    shared,
    local,
    share,
    clock,
    callTimeoutMs,
    probeEveryMs: 1_000,
    onModeChange: (mode) => modes.push(mode),
    othersBackSince,
  });
  return { clock, shared, limiter, modes };
}

async function startCount(limiter: FailSafeLimiter, attempts: number): Promise<Permit[]> {
  const permits: Permit[] = [];
  for (let index = 0; index < attempts; index++) {
    const decision = await limiter.tryStart(1);
    if (decision.started) permits.push(decision.permit);
  }
  return permits;
}

describe('FailSafeLimiter (clock-driven)', () => {
  test('a start that timed out while Redis still answers a ping is asked again, not run on the share', async () => {
    // A stalled event loop, not Redis: falling back would start calls the shared quota does not count.
    const { shared, limiter, modes } = setup();
    shared.timeouts = 1;
    const decision = await limiter.tryStart(1);
    expect(decision).toEqual({ started: false, retryAt: 0 });
    expect(limiter.mode).toBe('shared');
    expect(modes).toEqual([]);
    expect((await limiter.tryStart(1)).started).toBe(true);
    // Redis misses the ping too: then it is gone, and the share applies.
    shared.timeouts = 1;
    shared.pingFails = true;
    await limiter.tryStart(1);
    expect(limiter.mode).toBe('degraded');
  });

  test('several starts in one ask while shared; one at a time on the share once Redis is gone', async () => {
    const { shared, limiter } = setup();
    const batch = await limiter.tryStartMany(1, undefined, 4);
    expect(batch.permits).toHaveLength(4);
    expect(batch.retryAt).toBeNull();
    // Each permit of the batch is this instance's call in flight: a release reaches Redis.
    await limiter.release(batch.permits[2]);
    expect(shared.released).toEqual([String(batch.permits[2].id)]);
    for (const permit of batch.permits) await limiter.release(permit);
    shared.down = true;
    // The share (6 / 3 = 2 slots) is checked here, one start per ask.
    const first = await limiter.tryStartMany(1, undefined, 4);
    expect(limiter.mode).toBe('degraded');
    expect(first.permits).toHaveLength(1);
    expect((await limiter.tryStartMany(1, undefined, 4)).permits).toHaveLength(1);
    const refused = await limiter.tryStartMany(1, undefined, 4);
    expect(refused.permits).toHaveLength(0);
    expect(limiter.snapshot().active).toBe(2);
  });

  test('1/N of the RPM, less 1/N of the starts the cluster already made this window', async () => {
    const { shared, limiter } = setup();
    shared.load = { active: 0, startsLastMinute: 12, tokensLastMinute: 0, observedAt: 0 };
    shared.down = true;
    // Share: 30 / 3 = 10 starts; the cluster's 12 count as 12 / 3 = 4 of them: 6 left.
    let starts = 0;
    for (let attempt = 0; attempt < 20; attempt++) {
      const decision = await limiter.tryStart(1);
      if (!decision.started) break;
      starts++;
      await limiter.release(decision.permit);
    }
    expect(limiter.mode).toBe('degraded');
    expect(starts).toBe(6);
  });

  test('the cluster’s starts leave the fallback window when they happened, not a window after the outage', async () => {
    const { clock, shared, limiter } = setup();
    // 30 starts in the shared window, 5 every 10 s (the heartbeat's age buckets, newest first).
    clock.advance(60_000);
    const at = (ageMs: number) => clock.now() - ageMs;
    const recentStarts = [0, 10_000, 20_000, 30_000, 40_000, 50_000].map((age) => ({
      at: at(age),
      count: 5,
    }));
    shared.load = {
      active: 0,
      startsLastMinute: 30,
      tokensLastMinute: 0,
      observedAt: clock.now(),
      recentStarts,
    };
    shared.down = true;
    /** Starts (each call released at once, so only the window limits) until one is refused. */
    const startsNow = async () => {
      let count = 0;
      for (const permit of await startCount(limiter, 1)) {
        count++;
        await limiter.release(permit);
        count += await startsNow();
      }
      return count;
    };
    // Share 30 / 3 = 10 a window; the cluster's 30 count as 10 of them: nothing left now.
    expect(await startsNow()).toBe(0);
    expect(limiter.mode).toBe('degraded');
    // The oldest bucket (50 s old) leaves the 60.5 s window 10.5 s later: its share, one start, frees.
    clock.advance(11_000);
    expect(await startsNow()).toBe(1);
    // Forty more seconds: the buckets aged 40 … 10 s left too (one start each), the newest not yet.
    clock.advance(40_000);
    expect(await startsNow()).toBe(4);
  });

  test('the other instances’ calls in flight hold 1/N of their slots until the call timeout', async () => {
    const { clock, shared, limiter } = setup(3, 10_000);
    shared.load = { active: 3, startsLastMinute: 0, tokensLastMinute: 0, observedAt: 0 };
    shared.down = true;
    // Share 2 slots; the others' 3 calls hold ceil(3/3) = 1: one start, then none.
    const first = await limiter.tryStart(1);
    expect(first.started).toBe(true);
    const refused = await limiter.tryStart(1);
    expect(refused).toEqual({ started: false, retryAt: 10_000 });
    clock.advance(10_000);
    expect((await limiter.tryStart(1)).started).toBe(true);
    expect((await limiter.tryStart(1)).started).toBe(false);
  });

  test('news of the others’ starts read after the outage began still holds their slots', async () => {
    const { shared, limiter } = setup(3, 10_000);
    shared.load = { active: 0, startsLastMinute: 0, tokensLastMinute: 0, observedAt: 0 };
    shared.down = true;
    // The outage is noticed on the commands connection with nothing known in flight: share 2.
    expect((await limiter.tryStart(1)).started).toBe(true);
    // The load channel, read only now, tells of 6 calls the others started before Redis went
    // (none of them this instance's): they hold ceil(6 / 3) = 2 slots of the share.
    shared.load = { active: 6, startsLastMinute: 6, tokensLastMinute: 0, observedAt: 0 };
    expect(await limiter.tryStart(1)).toEqual({ started: false, retryAt: 10_000 });
    // Later news of fewer calls does not lower the hold: what was in flight may still be running.
    shared.load = { active: 0, startsLastMinute: 6, tokensLastMinute: 0, observedAt: 0 };
    expect((await limiter.tryStart(1)).started).toBe(false);
  });

  test('recovering, it renews its leases first and still holds for the others’ calls until they must have ended', async () => {
    const { clock, shared, limiter } = setup(3, 10_000);
    const before = await limiter.tryStart(1);
    if (!before.started) throw new Error('expected a shared start');
    // The others ran 5 calls when Redis went (its own had just ended): ceil(5/3) = 2 of this
    // share's 2 slots are theirs.
    shared.load = { active: 5, startsLastMinute: 0, tokensLastMinute: 0, observedAt: 0 };
    shared.down = true;
    await limiter.release(before.permit);
    expect((await limiter.tryStart(1)).started).toBe(false);
    shared.down = false;
    await clock.advanceAsync(1_000);
    expect(limiter.mode).toBe('recovering');
    expect(shared.renewals).toBe(1);
    // Redis says yes, but an instance still cut off may run those calls with their leases expired.
    expect(await limiter.tryStart(1)).toEqual({ started: false, retryAt: 10_000 });
    clock.advance(9_000);
    expect((await limiter.tryStart(1)).started).toBe(true);
  });

  test('recovery ends before its window once every other instance has said, since the outage, that it is back', async () => {
    let back = false;
    const asked: number[] = [];
    const { clock, shared, limiter, modes } = setup(3, 10_000, (since) => {
      asked.push(since);
      return back;
    });
    clock.advance(5_000);
    shared.load = { active: 3, startsLastMinute: 0, tokensLastMinute: 0, observedAt: 0 };
    shared.down = true;
    expect((await limiter.tryStart(1)).started).toBe(true);
    shared.down = false;
    await clock.advanceAsync(1_000);
    expect(limiter.mode).toBe('recovering');
    // Still holding for the others' calls: ceil(3/3) = 1 of its 2 slots, its own call the other.
    expect((await limiter.tryStart(1)).started).toBe(false);
    back = true;
    limiter.checkRecovery();
    expect(modes).toEqual(['degraded', 'recovering', 'shared']);
    // Asked about figures published since this instance lost Redis.
    expect(asked.at(-1)).toBe(5_000);
    // Shared again: Redis alone decides, the hold has gone with the recovery.
    expect((await limiter.tryStart(1)).started).toBe(true);
  });

  test('a call started alone while the hand-over is on its way is handed over too, before Redis decides again', async () => {
    const { clock, shared, limiter } = setup();
    shared.down = true;
    const [first] = await startCount(limiter, 1);
    let answer!: () => void;
    shared.adoptGate = new Promise<void>((resolve) => (answer = resolve));
    shared.down = false;
    await clock.advanceAsync(1_000);
    // The probe got its ping and sent the adoption; Redis has not answered it yet: still degraded,
    // so this call starts on the share, and Redis knows nothing of it.
    expect(limiter.mode).toBe('degraded');
    const [second] = await startCount(limiter, 1);
    answer();
    await flushMicrotasks(50);
    expect(limiter.mode).toBe('recovering');
    // Both run: both are Redis's to count (their leases), or the others start beside them.
    expect(shared.adopted.filter((entry) => entry.running).map((entry) => entry.id)).toEqual([
      String(first.id),
      String(second.id),
    ]);
  });

  test('hands its calls to Redis on recovery, keeps its share for one window, then shared alone', async () => {
    const { clock, shared, limiter, modes } = setup();
    const before = await limiter.tryStart(1);
    if (!before.started) throw new Error('expected a shared start');
    shared.down = true;
    await limiter.release(before.permit);
    const [alone] = await startCount(limiter, 1);
    clock.advance(500);
    await limiter.tryStart(1);
    shared.down = false;
    await clock.advanceAsync(1_000);
    expect(limiter.mode).toBe('recovering');
    expect(modes).toEqual(['degraded', 'recovering']);
    expect(shared.adopted.map((entry) => entry.id)).toContain(String(alone.id));
    // The release Redis missed was sent again.
    expect(shared.released).toContain(String((before.permit as Permit & { id: string }).id));
    // Recovering: the local share must agree too, so Redis's yes is not enough once it is used up.
    const during = await startCount(limiter, 20);
    expect(during.length).toBeLessThanOrEqual(2);
    clock.advance(shared.windowMs);
    expect(limiter.mode).toBe('shared');
    expect(limiter.status()).toMatchObject({ mode: 'shared' });
    expect(limiter.status().reason).toBeUndefined();
  });
});

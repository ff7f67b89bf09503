import type Redis from 'ioredis';
import { systemClock } from '../../api/clock';
import type { Limiter } from '../../api/llm/limiter';
import { RedisLimiter } from '../../api/llm/redis/redis-limiter';
import type { ClusterStarts, RedisLimiterOptions } from '../../api/llm/redis/redis-limiter-options';
import { describeLimiterBehaviour } from './limiter-behaviour';
import { connectRedis, randomPrefix, removeKeys, sleep, waitFor } from './redis-helpers';

/**
 * The Redis adapter against the real Redis at 127.0.0.1:6379 (REDIS_TEST_URL), each test under a
 * random key prefix removed afterwards. Redis TIME cannot be faked, so these use short windows and
 * real time, with generous margins for a loaded machine.
 */

describe('RedisLimiter (limiter behaviour suite)', () => {
  describeLimiterBehaviour(() => {
    const windowMs = 1_500;
    const prefix = randomPrefix();
    const created: Array<{ limiter: RedisLimiter; redis: Redis }> = [];
    return {
      windowMs,
      async create(spec) {
        const redis = await connectRedis();
        const limiter = new RedisLimiter({
          redis,
          keyPrefix: `${prefix}${created.length}:`,
          instanceId: `test-${created.length}`,
          clock: systemClock,
          maxConcurrent: spec.maxConcurrent,
          maxRpm: spec.maxRpm,
          maxTpm: spec.maxTpm ?? 0,
          burstWindowMs: spec.burstWindowMs ?? windowMs / 6,
          windowMarginMs: 0,
          providerWindowMs: windowMs,
        });
        created.push({ limiter, redis });
        return limiter;
      },
      pass: (ms) => sleep(ms),
      now: () => systemClock.now(),
      async rateLimited(limiter: Limiter, kind) {
        await (limiter as RedisLimiter).rateLimited(kind);
      },
      async destroy() {
        for (const { limiter, redis } of created) {
          await limiter.close();
          await removeKeys(redis, prefix);
          redis.disconnect();
        }
      },
    };
  });
});

describe('RedisLimiter across instances', () => {
  let prefix: string;
  const clients: Redis[] = [];
  const limiters: RedisLimiter[] = [];

  /** A limiter with its own connection, as another instance would have. */
  async function instance(options: Partial<RedisLimiterOptions> = {}): Promise<RedisLimiter> {
    const redis = await connectRedis();
    clients.push(redis);
    const limiter = new RedisLimiter({
      redis,
      keyPrefix: prefix,
      instanceId: `instance-${limiters.length}`,
      clock: systemClock,
      maxConcurrent: 5,
      maxRpm: 10_000,
      maxTpm: 0,
      burstWindowMs: 0,
      ...options,
    });
    limiters.push(limiter);
    return limiter;
  }

  beforeEach(() => {
    prefix = randomPrefix();
  });

  afterEach(async () => {
    for (const limiter of limiters.splice(0)) await limiter.close();
    if (clients[0]) await removeKeys(clients[0], prefix);
    for (const redis of clients.splice(0)) redis.disconnect();
  });

  test('three instances racing for 5 slots get exactly 5, and a release anywhere frees one for all', async () => {
    const racers = await Promise.all([instance(), instance(), instance()]);
    const decisions = await Promise.all(
      racers.flatMap((limiter) => Array.from({ length: 20 }, () => limiter.tryStart(1))),
    );
    const started = decisions.filter((decision) => decision.started);
    expect(started).toHaveLength(5);
    // Blocked on concurrency, another instance's release can come at any time: ask again soon.
    const refused = decisions.find((decision) => !decision.started);
    expect(refused && !refused.started && refused.retryAt).not.toBeNull();
    const first = started[0];
    if (!first.started) throw new Error('unreachable');
    const owner = racers[Math.floor(decisions.indexOf(first) / 20)];
    await owner.release(first.permit);
    const again = await Promise.all(racers.map((limiter) => limiter.tryStart(1)));
    expect(again.filter((decision) => decision.started)).toHaveLength(1);
  });

  test('three instances racing for a rolling minute of 20 starts get exactly 20', async () => {
    const racers = await Promise.all([
      instance({ maxRpm: 20, maxConcurrent: 1000 }),
      instance({ maxRpm: 20, maxConcurrent: 1000 }),
      instance({ maxRpm: 20, maxConcurrent: 1000 }),
    ]);
    const decisions = await Promise.all(
      racers.flatMap((limiter) => Array.from({ length: 15 }, () => limiter.tryStart(1))),
    );
    expect(decisions.filter((decision) => decision.started)).toHaveLength(20);
    for (const decision of decisions) if (decision.started) await racers[0].release(decision.permit);
    // Every instance sees the same window: the 21st start waits about a minute wherever it is asked.
    for (const limiter of racers) {
      const decision = await limiter.tryStart(1);
      if (decision.started) throw new Error('a 21st start in the minute');
      expect(decision.retryAt! - systemClock.now()).toBeGreaterThan(55_000);
      expect(limiter.snapshot().startsLastMinute).toBe(20);
    }
  });

  test('the priority order holds across instances: a slot goes to the earliest head waiting anywhere', async () => {
    const holder = await instance({ maxConcurrent: 1 });
    const early = await instance({ maxConcurrent: 1 });
    const late = await instance({ maxConcurrent: 1 });
    const held = await holder.tryStart(1);
    if (!held.started) throw new Error('the first start was refused');
    const key = systemClock.now();
    // Blocked on concurrency, each registers its head (the first reply only measures Redis's clock).
    for (const limiter of [early, late, early, late])
      expect((await limiter.tryStart(1, limiter === early ? key : key + 1_000)).started).toBe(false);
    await holder.release(held.permit);
    // The slot is free, but an earlier call waits on another instance: ask again within the poll.
    const overtaking = await late.tryStart(1, key + 1_000);
    expect(overtaking.started).toBe(false);
    if (overtaking.started) return;
    expect(overtaking.retryAt! - systemClock.now()).toBeLessThan(1_000);
    const first = await early.tryStart(1, key);
    expect(first.started).toBe(true);
    if (!first.started) return;
    // A head that started leaves the order: the later one goes next.
    await early.release(first.permit);
    expect((await late.tryStart(1, key + 1_000)).started).toBe(true);
  });

  test('a head whose instance stops asking (cancelled, paused, killed) lapses and holds nobody back', async () => {
    const holder = await instance({ maxConcurrent: 1, headTtlMs: 1_000, pollMs: 25 });
    const gone = await instance({ maxConcurrent: 1, headTtlMs: 1_000, pollMs: 25 });
    const waiting = await instance({ maxConcurrent: 1, headTtlMs: 1_000, pollMs: 25 });
    const held = await holder.tryStart(1);
    if (!held.started) throw new Error('the first start was refused');
    const key = systemClock.now();
    // A second apart: each instance converts its key to Redis time with its own measured offset.
    for (const limiter of [gone, waiting, gone])
      await limiter.tryStart(1, limiter === gone ? key : key + 1_000);
    await holder.release(held.permit);
    expect((await waiting.tryStart(1, key + 1_000)).started).toBe(false);
    // `gone` never asks again: its place lapses 1 s after its retry time (25 ms).
    await waitFor(async () => (await waiting.tryStart(1, key + 1_000)).started, 5_000);
  });

  test('a lease whose holder stops renewing (SIGKILL) expires and its slot returns; renewed ones stay', async () => {
    // Leases of 2 s renewed every 200 ms: only a stall of 1.8 s could lose the living one.
    const killed = await instance({ maxConcurrent: 2, leaseMs: 2_000, renewEveryMs: 200 });
    const alive = await instance({ maxConcurrent: 2, leaseMs: 2_000, renewEveryMs: 200 });
    expect((await killed.tryStart(1)).started).toBe(true);
    expect((await alive.tryStart(1)).started).toBe(true);
    expect((await alive.tryStart(1)).started).toBe(false);
    killed.abandonLeases();
    // The surviving lease is renewed; only the killed one's slot comes back.
    await waitFor(async () => (await alive.tryStart(1)).started, 10_000);
    await sleep(2_500);
    expect((await alive.tryStart(1)).started).toBe(false);
    expect(alive.snapshot().active).toBe(2);
  });

  test('every start and release is announced: an idle instance knows the calls in flight elsewhere, live', async () => {
    const [busy, idle] = await Promise.all([instance(), instance()]);
    const subscriber = await connectRedis();
    clients.push(subscriber);
    await idle.followLoad(subscriber);
    const decisions = await Promise.all([busy.tryStart(1), busy.tryStart(1), busy.tryStart(1)]);
    // The idle instance asked Redis nothing: only the load channel can tell it.
    await waitFor(() => idle.clusterLoad().active === 3);
    expect(idle.clusterLoad().startsLastMinute).toBe(3);
    expect(idle.snapshot().active).toBe(3);
    const [first] = decisions;
    if (!first.started) throw new Error('expected a start');
    await busy.release(first.permit);
    await waitFor(() => idle.clusterLoad().active === 2);
    // News older than what is known (a reply that crossed a newer announcement) changes nothing.
    idle.announced(`${idle.clusterLoad().redisAt! - 1} 0`);
    expect(idle.clusterLoad().active).toBe(2);
    // The same millisecond from another connection: the larger count stands (never understated).
    idle.announced(`${idle.clusterLoad().redisAt!} 1`);
    expect(idle.clusterLoad().active).toBe(2);
  });

  test("every instance hears the cluster's starts: how many started, and whether calls still wait", async () => {
    const starts: ClusterStarts[] = [];
    const busy = await instance({ maxConcurrent: 2 });
    const idle = await instance({ maxConcurrent: 2, onClusterStarts: (news) => starts.push(news) });
    const subscriber = await connectRedis();
    clients.push(subscriber);
    await idle.followLoad(subscriber);
    // One script asks for three starts: two fit, the third still waits.
    const batch = await busy.tryStartMany(1, Date.now(), 3);
    expect(batch.permits).toHaveLength(2);
    await waitFor(() => starts.length === 1);
    expect(starts[0]).toMatchObject({ count: 2, waiting: true });
    await busy.release(batch.permits[0]);
    // The waiting call starts; its head leaves the order, and nothing waits any more.
    const next = await busy.tryStartMany(1, Date.now(), 1);
    expect(next.permits).toHaveLength(1);
    await waitFor(() => starts.length === 2);
    expect(starts[1]).toMatchObject({ count: 1, waiting: false });
    expect(starts[1].redisAt).toBeGreaterThanOrEqual(starts[0].redisAt);
    // A release is announced too, but it is no start.
    await busy.release(next.permits[0]);
    await waitFor(() => idle.clusterLoad().active === 1);
    expect(starts).toHaveLength(2);
  });

  test('news of one Redis millisecond keeps its order: a release right after its start is not lost to it', async () => {
    const [busy, idle] = await Promise.all([instance(), instance()]);
    const subscriber = await connectRedis();
    clients.push(subscriber);
    let heard = 0;
    subscriber.on('message', () => heard++);
    await idle.followLoad(subscriber);
    // Back to back over loopback, most of these pairs run within one millisecond of Redis time.
    for (let round = 0; round < 50; round++) {
      const decision = await busy.tryStart(1);
      if (!decision.started) throw new Error('expected a start');
      await busy.release(decision.permit);
    }
    await waitFor(() => heard === 100);
    // The last news is a release: nothing is in flight (a tie kept by the larger count said 1).
    expect(idle.clusterLoad().active).toBe(0);
    expect(idle.clusterLoad().startsLastMinute).toBe(50);
  });

  test('renewing at once writes back the leases an outage let expire', async () => {
    const holder = await instance({ maxConcurrent: 1, leaseMs: 300, renewEveryMs: 60_000 });
    const other = await instance({ maxConcurrent: 1, leaseMs: 300, renewEveryMs: 60_000 });
    expect((await holder.tryStart(1)).started).toBe(true);
    await sleep(400);
    // The call still runs at the provider, but its lease lapsed (no renewal within 300 ms)…
    await holder.renewLeases();
    // …and is counted again before anyone else can take its slot.
    expect((await other.tryStart(1)).started).toBe(false);
  });

  test('Redis loses the shared state (a restart, a FLUSHALL) while a call runs: nobody starts until its lease is back', async () => {
    const holder = await instance({ maxConcurrent: 1, leaseMs: 10_000, renewEveryMs: 300 });
    const other = await instance({ maxConcurrent: 1, leaseMs: 10_000, renewEveryMs: 300 });
    expect((await holder.tryStart(1)).started).toBe(true);
    expect((await other.tryStart(1)).started).toBe(false);
    // Every key of the prefix goes, as a FLUSHALL would take them (the shared Redis is never flushed).
    await removeKeys(clients[0], prefix);
    // `other` knew the old state: it notices the new one, and every start waits one renewal period…
    const during = await other.tryStart(1);
    expect(during.started).toBe(false);
    // …in which the holder's renewal writes its running call's lease back: the slot stays taken.
    await sleep(1_000);
    expect((await other.tryStart(1)).started).toBe(false);
    expect(other.snapshot().active).toBe(1);
  });

  test('a 429 on one instance lowers the limits every instance enforces (shared AIMD, with cooldown)', async () => {
    const [one, two] = await Promise.all([instance({ maxConcurrent: 10 }), instance({ maxConcurrent: 10 })]);
    expect(await one.rateLimited('requests')).toBe(true);
    // The same overload's 429s on another instance, within the cooldown, count once.
    expect(await two.rateLimited('requests')).toBe(false);
    await two.tryStart(1);
    expect(two.snapshot().limits.concurrency).toBe(7);
  });

  test('a Retry-After hold set by one instance stops the others', async () => {
    const [one, two] = await Promise.all([instance(), instance()]);
    await one.holdStarts(5_000);
    const decision = await two.tryStart(1);
    if (decision.started) throw new Error('started during another instance’s hold');
    expect(decision.retryAt! - systemClock.now()).toBeGreaterThan(3_000);
  });
});

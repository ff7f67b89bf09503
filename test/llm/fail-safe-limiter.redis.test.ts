import type Redis from 'ioredis';
import { systemClock } from '../../api/clock';
import { InMemoryLimiter, type Permit, type StartDecision } from '../../api/llm/limiter';
import { FailSafeLimiter } from '../../api/llm/redis/fail-safe-limiter';
import { QuotaShare } from '../../api/llm/redis/quota-share';
import { RedisLimiter } from '../../api/llm/redis/redis-limiter';
import { limiterKeys } from '../../api/llm/redis/redis-limiter-options';
import { startTcpProxy, type TcpProxy } from '../../scripts/bench/tcp-proxy';
import { connectRedis, randomPrefix, removeKeys, waitFor } from './redis-helpers';

/**
 * Redis unreachable for one instance (a TCP proxy between it and the real Redis is cut): the
 * fail-safe limiter falls back to 1/N of each limit, counting what the cluster had already used,
 * says so, and hands its calls back to Redis when it answers again.
 */
describe('FailSafeLimiter (Redis outage)', () => {
  let prefix: string;
  let direct: Redis;
  let proxy: TcpProxy;
  const closers: Array<() => Promise<void> | void> = [];

  beforeEach(async () => {
    prefix = randomPrefix();
    direct = await connectRedis();
    proxy = await startTcpProxy(6379);
  });

  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await removeKeys(direct, prefix);
    direct.disconnect();
    await proxy.close();
  });

  const limits = { maxConcurrent: 6, maxRpm: 30, maxTpm: 0, burstWindowMs: 0 };

  async function sharedLimiter(url: string | undefined, instanceId: string): Promise<RedisLimiter> {
    const redis = url ? await connectRedis(url, 300) : direct;
    const limiter = new RedisLimiter({ redis, keyPrefix: prefix, instanceId, clock: systemClock, ...limits });
    closers.push(async () => {
      await limiter.close();
      if (url) redis.disconnect();
    });
    return limiter;
  }

  async function failSafe(instances: number, url: string, id: string) {
    const shared = await sharedLimiter(url, id);
    // The load channel, through the same proxy: it falls silent at the cut too.
    const subscriber = await connectRedis(url);
    closers.push(() => subscriber.disconnect());
    await shared.followLoad(subscriber);
    const share = new QuotaShare({ shared, instances: () => instances });
    const local = new InMemoryLimiter({ clock: systemClock, ...limits, aimd: share });
    const warnings: string[] = [];
    const modes: string[] = [];
    const limiter = new FailSafeLimiter({
      shared,
      local,
      share,
      clock: systemClock,
      callTimeoutMs: 60_000,
      probeEveryMs: 100,
      logger: { info: () => undefined, warn: (_object: object, message: string) => warnings.push(message) },
      onModeChange: (mode) => modes.push(mode),
    });
    closers.push(() => limiter.close());
    return { limiter, warnings, modes };
  }

  function started(decision: StartDecision): Permit {
    if (!decision.started) throw new Error(`expected a start, got ${JSON.stringify(decision)}`);
    return decision.permit;
  }

  test('shared: a start asked right after a release, before it settles, finds the slot free', async () => {
    const { limiter } = await failSafe(1, proxy.url, 'me');
    const permits: Permit[] = [];
    for (let index = 0; index < limits.maxConcurrent; index++)
      permits.push(started(await limiter.tryStart(1)));
    expect((await limiter.tryStart(1)).started).toBe(false);
    const released = limiter.release(permits[0]);
    const next = await limiter.tryStart(1);
    await released;
    expect(next.started).toBe(true);
  });

  test('falls back to its 1/N share, counting the cluster’s calls in flight, and hands over on recovery', async () => {
    const other = await sharedLimiter(undefined, 'other');
    started(await other.tryStart(1));
    started(await other.tryStart(1));
    const { limiter, warnings, modes } = await failSafe(3, proxy.url, 'me');
    const mine = started(await limiter.tryStart(1));
    expect(limiter.snapshot().active).toBe(3);

    proxy.cut();
    // Share: 6 / 3 = 2 slots; the other instance's 2 calls still in flight hold ceil(2/3) = 1 of
    // them, and this instance's own shared call the other: nothing more may start here.
    const refused = await limiter.tryStart(1);
    expect(refused.started).toBe(false);
    expect(limiter.mode).toBe('degraded');
    expect(limiter.status().reason).toMatch(/Redis unreachable/);
    expect(limiter.status().share).toEqual({ concurrency: 2, rpm: 10 });
    expect(warnings).toHaveLength(1);

    await limiter.release(mine);
    const alone = started(await limiter.tryStart(1));
    expect((await limiter.tryStart(1)).started).toBe(false);
    // Logged once per outage, not per refused start.
    expect(warnings).toHaveLength(1);

    proxy.restore();
    await waitFor(() => limiter.mode === 'recovering', 15_000);
    expect(modes).toEqual(['degraded', 'recovering']);
    const keys = limiterKeys(prefix);
    // Redis now knows the call made alone (lease and start) and heard the missed release.
    expect(await direct.zscore(keys.leases, String(alone.id))).not.toBeNull();
    expect(await direct.zscore(keys.starts, String(alone.id))).not.toBeNull();
    expect(await direct.zscore(keys.leases, String(mine.id))).toBeNull();
    expect(await direct.zcard(keys.leases)).toBe(3);
    await limiter.release(alone);
    expect(await direct.zcard(keys.leases)).toBe(2);
    // Recovering: a start needs the local share and Redis; here the share is the tighter one.
    const next = started(await limiter.tryStart(1));
    expect(
      await direct.zscore(keys.leases, String((next as Permit & { shared?: Permit }).shared!.id)),
    ).not.toBeNull();
  });

  test('an idle instance holds for the calls another started after its own last word with Redis', async () => {
    const { limiter } = await failSafe(3, proxy.url, 'idle');
    // Its last reply from Redis saw nothing in flight…
    await limiter.release(started(await limiter.tryStart(1)));
    const busy = await sharedLimiter(undefined, 'busy');
    for (let call = 0; call < 5; call++) started(await busy.tryStart(1));
    // …but the load channel told it of the busy instance's 5 calls (it asked Redis nothing since).
    await waitFor(() => limiter.snapshot().active === 5);
    proxy.cut();
    // Share 2 slots; ceil(5/3) = 2 held for those calls: starting here would put 7 at the provider.
    expect((await limiter.tryStart(1)).started).toBe(false);
    expect(limiter.mode).toBe('degraded');
    expect((await limiter.tryStart(1)).started).toBe(false);
  });

  test('three instances cut off at once stay within the quota together', async () => {
    const instances = await Promise.all(['a', 'b', 'c'].map((id) => failSafe(3, proxy.url, id)));
    // Warm: each has talked to Redis once (and so knows the cluster's load).
    for (const { limiter } of instances) await limiter.release(started(await limiter.tryStart(1)));
    proxy.cut();
    let inFlight = 0;
    for (const { limiter } of instances) {
      for (let attempt = 0; attempt < 10; attempt++) if ((await limiter.tryStart(1)).started) inFlight++;
    }
    expect(instances.every(({ limiter }) => limiter.mode === 'degraded')).toBe(true);
    expect(inFlight).toBeLessThanOrEqual(limits.maxConcurrent);
    expect(inFlight).toBeGreaterThan(0);
  });
});

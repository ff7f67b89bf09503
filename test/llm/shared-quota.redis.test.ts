import type Redis from 'ioredis';
import { systemClock } from '../../api/clock';
import { Aimd } from '../../api/llm/aimd';
import { createLlmScheduler } from '../../api/llm/create-llm-scheduler';
import type { LlmScheduler } from '../../api/llm/llm-scheduler';
import type {
  CompletionOptions,
  CompletionRequest,
  CompletionResult,
  Provider,
} from '../../api/llm/provider';
import { InMemoryLimiter } from '../../api/llm/limiter';
import { FailSafeLimiter } from '../../api/llm/redis/fail-safe-limiter';
import { QuotaShare } from '../../api/llm/redis/quota-share';
import { RedisLimiter } from '../../api/llm/redis/redis-limiter';
import { SharedAimd } from '../../api/llm/redis/shared-aimd';
import { testConfig } from '../../config';
import { maxInWindow, meta, request } from './helpers';
import { startTcpProxy } from '../../scripts/bench/tcp-proxy';
import { connectRedis, randomPrefix, removeKeys, sleep } from './redis-helpers';
import { waitUntil } from '../streaming/wait-until';

/**
 * The provider's view: one provider, counted at the provider, behind three schedulers ("instances")
 * each configured with the whole quota and sharing it through one Redis. Together they never have
 * more calls in flight than the quota, nor more starts in any rolling window.
 */
class CountingProvider implements Provider {
  readonly name = 'counting';
  inFlight = 0;
  maxInFlight = 0;
  readonly starts: number[] = [];

  constructor(private readonly latencyMs: number) {}

  complete(_request: CompletionRequest, options: CompletionOptions): Promise<CompletionResult> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    this.starts.push(performance.now());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.inFlight--;
        resolve({
          text: 'ok',
          toolCalls: [],
          usage: { promptTokens: 5, completionTokens: 5 },
          finishReason: 'stop',
        });
      }, this.latencyMs);
      options.signal.addEventListener(
        'abort',
        () => {
          clearTimeout(timer);
          this.inFlight--;
          reject(options.signal.reason);
        },
        { once: true },
      );
    });
  }
}

describe('three schedulers sharing one quota through Redis', () => {
  let prefix: string;
  const clients: Redis[] = [];
  const schedulers: LlmScheduler[] = [];

  beforeEach(() => {
    prefix = randomPrefix();
  });

  afterEach(async () => {
    for (const scheduler of schedulers.splice(0)) await scheduler.close();
    if (clients[0]) await removeKeys(clients[0], prefix);
    for (const redis of clients.splice(0)) redis.disconnect();
  });

  async function instance(
    provider: Provider,
    env: Record<string, string>,
    windows: { providerWindowMs?: number; burstWindowMs?: number } = {},
  ): Promise<LlmScheduler> {
    const config = testConfig({ LLM_ADMISSION: 'off', ...env });
    const redis = await connectRedis();
    clients.push(redis);
    const llm = config.llm;
    const shared = new RedisLimiter({
      redis,
      keyPrefix: prefix,
      instanceId: `instance-${clients.length}`,
      clock: systemClock,
      maxConcurrent: llm.maxConcurrent,
      maxRpm: llm.maxRpm,
      maxTpm: llm.maxTpm,
      ...windows,
    });
    const local = new Aimd({ clock: systemClock, maxConcurrent: llm.maxConcurrent, maxRpm: llm.maxRpm });
    const scheduler = createLlmScheduler({
      config,
      provider,
      clock: systemClock,
      limiter: { limiter: shared, aimd: new SharedAimd({ shared, local }) },
    });
    schedulers.push(scheduler);
    return scheduler;
  }

  test('in flight: 3 × the whole quota of 4 never puts more than 4 calls at the provider', async () => {
    const provider = new CountingProvider(30);
    const env = { LLM_MAX_CONCURRENT: '4', LLM_MAX_RPM: '100000' };
    const cluster = await Promise.all([
      instance(provider, env),
      instance(provider, env),
      instance(provider, env),
    ]);
    const calls = cluster.flatMap((scheduler, index) =>
      Array.from({ length: 20 }, (_, call) =>
        scheduler.complete(meta('host', `user-${index}-${call}`), request, {
          signal: new AbortController().signal,
        }),
      ),
    );
    const outcomes = await Promise.allSettled(calls);
    expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(60);
    expect(provider.starts).toHaveLength(60);
    expect(provider.maxInFlight).toBeLessThanOrEqual(4);
    // They really shared it: all four slots were used.
    expect(provider.maxInFlight).toBe(4);
  }, 60_000);

  test('a Redis outage mid-run: each falls back to 1/N and together they still never pass the quota', async () => {
    const proxy = await startTcpProxy(6379);
    // A direct connection first: afterEach cleans the keys through clients[0].
    clients.push(await connectRedis());
    try {
      const provider = new CountingProvider(40);
      const config = testConfig({
        LLM_ADMISSION: 'off',
        LLM_MAX_CONCURRENT: '6',
        LLM_MAX_RPM: '100000',
        LLM_TIMEOUT: '2000',
      });
      const llm = config.llm;
      const cluster: Array<{ scheduler: LlmScheduler; limiter: FailSafeLimiter }> = [];
      for (let index = 0; index < 3; index++) {
        const redis = await connectRedis(proxy.url, 300);
        const subscriber = await connectRedis(proxy.url);
        clients.push(redis, subscriber);
        const shared = new RedisLimiter({
          redis,
          keyPrefix: prefix,
          instanceId: `instance-${index}`,
          clock: systemClock,
          maxConcurrent: llm.maxConcurrent,
          maxRpm: llm.maxRpm,
          maxTpm: 0,
        });
        // As create-cluster wires it: what is in flight elsewhere, live, for the hold at the cut.
        await shared.followLoad(subscriber);
        const share = new QuotaShare({ shared, instances: () => 3 });
        const local = new InMemoryLimiter({
          clock: systemClock,
          maxConcurrent: 6,
          maxRpm: 100_000,
          maxTpm: 0,
          aimd: share,
        });
        let wake = () => {};
        const limiter = new FailSafeLimiter({
          shared,
          local,
          share,
          clock: systemClock,
          callTimeoutMs: llm.timeoutMs,
          probeEveryMs: 100,
          onModeChange: () => wake(),
        });
        const aimd = new SharedAimd({
          shared,
          local: new Aimd({ clock: systemClock, maxConcurrent: 6, maxRpm: 100_000 }),
        });
        const scheduler = createLlmScheduler({
          config,
          provider,
          clock: systemClock,
          limiter: { limiter, aimd },
        });
        wake = () => scheduler.queue.wake();
        schedulers.push(scheduler);
        cluster.push({ scheduler, limiter });
      }
      const calls = cluster.flatMap(({ scheduler }, index) =>
        Array.from({ length: 40 }, (_, call) =>
          scheduler.complete(meta('host', `user-${index}-${call}`, { timeoutMs: 30_000 }), request, {
            signal: new AbortController().signal,
          }),
        ),
      );
      await sleep(150);
      proxy.cut();
      await sleep(1_000);
      expect(cluster.every(({ limiter }) => limiter.mode === 'degraded')).toBe(true);
      proxy.restore();
      const outcomes = await Promise.allSettled(calls);
      expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(120);
      expect(provider.maxInFlight).toBeLessThanOrEqual(6);
      // Each instance leaves its share at its next probe once its connection is back. With several
      // starts per answer the calls can all end before the slowest reconnect: wait for it, bounded.
      await waitUntil(() => cluster.every(({ limiter }) => limiter.mode !== 'degraded'), 5_000);
      expect(cluster.every(({ limiter }) => limiter.mode !== 'degraded')).toBe(true);
    } finally {
      await proxy.close();
    }
  }, 90_000);

  test('rolling window: 3 × the whole quota of 10 starts per window never puts 11 in any window', async () => {
    const provider = new CountingProvider(5);
    const env = { LLM_MAX_CONCURRENT: '50', LLM_MAX_RPM: '10', LLM_TIMEOUT: '4500' };
    // A 1 s margin absorbs the delay between Redis's start and the provider's arrival on a loaded machine.
    const windows = { providerWindowMs: 1_000, windowMarginMs: 1_000, burstWindowMs: 0 };
    const cluster = await Promise.all([
      instance(provider, env, windows),
      instance(provider, env, windows),
      instance(provider, env, windows),
    ]);
    const calls = cluster.flatMap((scheduler, index) =>
      Array.from({ length: 12 }, (_, call) =>
        scheduler.complete(meta('host', `user-${index}-${call}`), request, {
          signal: new AbortController().signal,
        }),
      ),
    );
    await Promise.allSettled(calls);
    // Windows of 10 open at ~0, 2 and 4 s within the 4.5 s deadline; the rest time out queued.
    expect(provider.starts.length).toBeGreaterThanOrEqual(20);
    // The provider counts its own arrivals: a window of exactly 1 s never holds more than 10.
    expect(maxInWindow(provider.starts, 1_000)).toBeLessThanOrEqual(10);
  }, 60_000);
});

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
import { RedisLimiter } from '../../api/llm/redis/redis-limiter';
import { SharedAimd } from '../../api/llm/redis/shared-aimd';
import { testConfig } from '../../config';
import { maxInWindow, meta, request } from './helpers';
import { connectRedis, randomPrefix, removeKeys } from './redis-helpers';

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

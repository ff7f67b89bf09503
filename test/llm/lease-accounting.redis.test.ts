import fc from 'fast-check';
import type Redis from 'ioredis';
import { AGENT_NAMES } from '../../api/agents/agent-name';
import { systemClock } from '../../api/clock';
import { InMemoryLimiter } from '../../api/llm/limiter';
import { FailSafeLimiter } from '../../api/llm/redis/fail-safe-limiter';
import { QuotaShare } from '../../api/llm/redis/quota-share';
import { RedisLimiter } from '../../api/llm/redis/redis-limiter';
import { limiterKeys } from '../../api/llm/redis/redis-limiter-options';
import { RequestQueue } from '../../api/llm/request-queue';
import { startTcpProxy, type TcpProxy } from '../../scripts/bench/tcp-proxy';
import { connectRedis, randomPrefix, removeKeys, sleep, waitFor } from './redis-helpers';

/**
 * The shared quota's leases add up: at every quiet moment the leases in Redis are exactly the calls
 * in flight at the provider, summed over the instances — whatever happened before. fast-check plays
 * random interleavings of starts, releases, aborts, deadlines, local command timeouts (a stalled
 * Redis connection, through a TCP proxy that holds every byte) and stalled event loops (a
 * synchronous busy wait, as a long GC pause) on three instances, each a real request queue over
 * the real Redis limiter behind its fail-safe, then checks the invariant. The lease is long (20 s)
 * and the check waits 3 s at most: no lease may have to expire to make the count right.
 */
const INSTANCES = 3;
const CONCURRENCY = 4;
const COMMAND_TIMEOUT_MS = 80;
const LEASE_MS = 20_000;
/**
 * How long the calls may take to end once nothing keeps them: every one has ended by its deadline
 * (1.5 s at most) plus its hold, or its abort. A call still there much later is a finding (a slot
 * never granted nor refused), reported with the run, not a test that hangs until its timeout.
 */
const CALLS_END_MS = 10_000;

type Action =
  | {
      kind: 'call';
      instance: number;
      holdMs: number;
      deadlineMs: number;
      abortAfterMs?: number;
      keep: boolean;
    }
  | { kind: 'gap'; ms: number }
  /** Redis (the connection) stalls: commands time out here and run later. */
  | { kind: 'stall'; ms: number }
  /** This process stalls: replies wait in the socket while the command timers fire. */
  | { kind: 'busy'; ms: number };

const action: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('call' as const),
      instance: fc.integer({ min: 0, max: INSTANCES - 1 }),
      holdMs: fc.integer({ min: 0, max: 150 }),
      deadlineMs: fc.integer({ min: 30, max: 1_500 }),
      abortAfterMs: fc.option(fc.integer({ min: 0, max: 200 }), { nil: undefined }),
      keep: fc.boolean(),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('gap' as const), ms: fc.integer({ min: 0, max: 40 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('stall' as const), ms: fc.integer({ min: 20, max: 400 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('busy' as const), ms: fc.integer({ min: 20, max: 300 }) }),
  },
);

/** `promise`, or a failure saying `what()` once `ms` have passed. */
async function within<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(what())), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

interface Instance {
  queue: RequestQueue;
  limiter: FailSafeLimiter;
  shared: RedisLimiter;
  degraded: boolean;
}

describe('the shared quota’s leases (property, real Redis)', () => {
  let direct: Redis;
  let proxy: TcpProxy;

  beforeAll(async () => {
    direct = await connectRedis();
    proxy = await startTcpProxy(6379);
  });

  afterAll(async () => {
    direct.disconnect();
    await proxy.close();
  });

  async function liveLeases(prefix: string): Promise<number> {
    const [seconds, micros] = await direct.time();
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    return direct.zcount(limiterKeys(prefix).leases, `(${now}`, '+inf');
  }

  async function run(actions: Action[]): Promise<{ maxInFlight: number; degraded: boolean }> {
    const prefix = randomPrefix();
    const closers: Array<() => Promise<void> | void> = [];
    const instances: Instance[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const kept: Array<() => void> = [];
    /** The kept calls were let go: one that gets its slot only now runs for its hold, as any other. */
    let letGo = false;
    /** Calls not ended yet, and where they are: what a run that cannot finish reports. */
    const pending = new Map<Extract<Action, { kind: 'call' }>, 'waiting' | 'running'>();
    const calls: Array<Promise<void>> = [];
    const passing: Array<Promise<void>> = [];
    const stuck = (moment: string) => () =>
      `calls not ended ${moment}: ${JSON.stringify([...pending].map(([spec, where]) => ({ ...spec, where })))}`;
    const call = async (spec: Extract<Action, { kind: 'call' }>): Promise<void> => {
      const controller = new AbortController();
      if (spec.abortAfterMs !== undefined) setTimeout(() => controller.abort(), spec.abortAfterMs);
      pending.set(spec, 'waiting');
      let slot;
      try {
        slot = await instances[spec.instance].queue.acquire(
          {
            agentType: 'host',
            userId: 'u',
            conversationId: 'c',
            estimatedTokens: 1,
            deadline: systemClock.now() + spec.deadlineMs,
          },
          controller.signal,
        );
      } catch {
        pending.delete(spec);
        return; // aborted, timed out in the queue: it never reached the provider
      }
      pending.set(spec, 'running');
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      // The provider call: it ends when it is done, or when its caller aborts it.
      await new Promise<void>((resolve) => {
        if (spec.keep && !letGo) kept.push(resolve);
        else setTimeout(resolve, spec.holdMs);
        controller.signal.addEventListener('abort', () => resolve(), { once: true });
      });
      inFlight--;
      pending.delete(spec);
      slot.release();
    };

    try {
      // Set up inside the try: should an instance fail to, the ones before it are closed.
      for (let index = 0; index < INSTANCES; index++) {
        const redis = await connectRedis(proxy.url, COMMAND_TIMEOUT_MS);
        const limits = { maxConcurrent: CONCURRENCY, maxRpm: 100_000, maxTpm: 0, burstWindowMs: 0 };
        const shared = new RedisLimiter({
          redis,
          keyPrefix: prefix,
          instanceId: `i${index}`,
          clock: systemClock,
          ...limits,
          leaseMs: LEASE_MS,
          renewEveryMs: 300,
          reconcileEveryMs: 50,
          pollMs: 10,
        });
        const share = new QuotaShare({ shared, instances: () => INSTANCES });
        const local = new InMemoryLimiter({ clock: systemClock, ...limits, aimd: share });
        const instance = {} as Instance;
        const limiter = new FailSafeLimiter({
          shared,
          local,
          share,
          clock: systemClock,
          callTimeoutMs: 2_000,
          probeEveryMs: 50,
          onModeChange: (mode) => {
            if (mode === 'degraded') instance.degraded = true;
            instance.queue.wake();
          },
        });
        const queue = new RequestQueue({
          clock: systemClock,
          limiter,
          queueMax: 1_000,
          priorityOrder: AGENT_NAMES,
        });
        Object.assign(instance, { queue, limiter, shared, degraded: false });
        instances.push(instance);
        closers.push(async () => {
          await limiter.close();
          redis.disconnect();
        });
      }
      for (const step of actions) {
        if (step.kind === 'call') {
          const promise = call(step);
          calls.push(promise);
          if (!step.keep) passing.push(promise);
        } else if (step.kind === 'gap') await sleep(step.ms);
        else if (step.kind === 'stall') {
          proxy.stall();
          await sleep(step.ms);
          proxy.flow();
        } else {
          const until = Date.now() + step.ms;
          while (Date.now() < until) {
            // A stalled event loop: timers and socket reads wait.
          }
        }
      }
      // Quiet moment 1: the kept calls still run (or wait for a slot), every other call has ended.
      await within(Promise.all(passing), CALLS_END_MS, stuck('before quiet moment 1'));
      await sleep(COMMAND_TIMEOUT_MS * 2);
      const running = () => inFlight;
      await waitFor(async () => (await liveLeases(prefix)) === running(), 3_000).catch(async () => {
        throw new Error(`leases ${await liveLeases(prefix)} ≠ calls in flight ${running()} (calls running)`);
      });
      // Quiet moment 2: every call has ended.
      letGo = true;
      for (const resolve of kept.splice(0)) resolve();
      await within(Promise.all(calls), CALLS_END_MS, stuck('before quiet moment 2'));
      await waitFor(async () => (await liveLeases(prefix)) === 0, 3_000).catch(async () => {
        throw new Error(`leases ${await liveLeases(prefix)} left after every call ended`);
      });
      // Renewals renew only live permits: nothing reappears.
      await sleep(400);
      expect(await liveLeases(prefix)).toBe(0);
      for (const instance of instances) expect(instance.shared.leaseCounts().held).toBe(0);
      return { maxInFlight, degraded: instances.some((instance) => instance.degraded) };
    } finally {
      letGo = true;
      for (const resolve of kept.splice(0)) resolve();
      await within(Promise.allSettled(calls), CALLS_END_MS, stuck('at the end')).catch(() => undefined);
      for (const close of closers) await close();
      await removeKeys(direct, prefix);
    }
  }

  test('at every quiet moment the leases in Redis equal the calls in flight, summed over instances', async () => {
    // A failure prints its seed, path and counterexample: TROUPE_PROPERTY_SEED and
    // TROUPE_PROPERTY_PATH replay it (TROUPE_PROPERTY_RUNS runs more of them).
    const seed = process.env.TROUPE_PROPERTY_SEED;
    const numRuns = Number(process.env.TROUPE_PROPERTY_RUNS ?? 10);
    const outcomes: Array<{ maxInFlight: number; degraded: boolean }> = [];
    await fc.assert(
      fc.asyncProperty(fc.array(action, { minLength: 8, maxLength: 24 }), async (actions) => {
        const outcome = await run(actions);
        outcomes.push(outcome);
        // The quota stays strict whenever Redis answered each instance (a stall it outlived with a
        // ping): past C only if an instance really lost Redis and ran on its 1/N share alone.
        if (!outcome.degraded) expect(outcome.maxInFlight).toBeLessThanOrEqual(CONCURRENCY);
      }),
      {
        numRuns,
        ...(seed !== undefined ? { seed: Number(seed) } : {}),
        ...(process.env.TROUPE_PROPERTY_PATH ? { path: process.env.TROUPE_PROPERTY_PATH } : {}),
        // Each run takes about a second, so a long shrink would outlast the test's timeout: stop
        // early and fail with the counterexample found so far instead.
        interruptAfterTimeLimit: 120_000,
        markInterruptAsFailure: true,
      },
    );
    if (!process.env.TROUPE_PROPERTY_PATH) expect(outcomes.length).toBe(numRuns);
  }, 180_000);
});

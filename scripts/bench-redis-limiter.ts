/**
 * The Redis round trip's cost on dispatch (issue 10): tryStart latency of the shared limiter against
 * the in-memory one, alone and with three instances contending, and how long a call blocked on
 * concurrency waits after another instance's release (the poll interval bounds it).
 *
 *   npm run bench:redis -- [--url redis://127.0.0.1:6379] [--samples 5000]
 *
 * Uses a random key prefix and removes its keys afterwards.
 */
import { randomUUID } from 'node:crypto';
import type Redis from 'ioredis';
import { createRedisConnection } from '../api/redis/redis-connection';
import { systemClock } from '../api/clock';
import { InMemoryLimiter, type Limiter } from '../api/llm/limiter';
import { RedisLimiter } from '../api/llm/redis/redis-limiter';

function argument(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 && process.argv[index + 1] ? process.argv[index + 1] : fallback;
}

const url = argument('url', 'redis://127.0.0.1:6379');
const samples = Number(argument('samples', '5000'));
const prefix = `troupe-bench:${randomUUID().slice(0, 8)}:`;

function percentiles(values: number[]): { p50: number; p99: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))];
  const round = (value: number) => Math.round(value * 1000) / 1000;
  return { p50: round(at(0.5)), p99: round(at(0.99)), max: round(sorted[sorted.length - 1]) };
}

async function timeStarts(limiter: Limiter, count: number): Promise<number[]> {
  const latencies: number[] = [];
  for (let index = 0; index < count; index++) {
    const startedAt = performance.now();
    // With an order key, as the queue dispatches (the Redis script then also keeps the cluster's order).
    const decision = await limiter.tryStart(100, systemClock.now());
    latencies.push(performance.now() - startedAt);
    if (decision.started) await limiter.release(decision.permit);
  }
  return latencies;
}

async function main(): Promise<void> {
  const clients: Redis[] = [];
  const connect = async () => {
    const redis = createRedisConnection(url, { commandTimeoutMs: 2_000, lazy: true });
    await redis.connect();
    clients.push(redis);
    return redis;
  };
  const limits = { maxConcurrent: 1_000_000, maxRpm: 10_000_000, maxTpm: 0, burstWindowMs: 0 };
  const shared = (redis: Redis, id: string, keyPrefix = prefix, extra = {}) =>
    new RedisLimiter({ redis, keyPrefix, instanceId: id, clock: systemClock, ...limits, ...extra });
  const results: Record<string, unknown> = {};
  try {
    const memory = new InMemoryLimiter({ clock: systemClock, ...limits });
    await timeStarts(memory, 500);
    results['in-memory tryStart (ms)'] = percentiles(await timeStarts(memory, samples));

    // The machine's own round trip: a plain PING on the same kind of connection (the floor).
    const pingClient = await connect();
    const pings: number[] = [];
    for (let index = 0; index < samples + 500; index++) {
      const startedAt = performance.now();
      await pingClient.ping();
      if (index >= 500) pings.push(performance.now() - startedAt);
    }
    results['Redis PING, the round-trip floor (ms)'] = percentiles(pings);

    const alone = shared(await connect(), 'alone');
    await timeStarts(alone, 500);
    results['Redis tryStart, one instance (ms)'] = percentiles(await timeStarts(alone, samples));

    // The rolling window holds every start of the last minute: measure with it well filled.
    const contenders = await Promise.all(
      ['a', 'b', 'c'].map(async (id) => shared(await connect(), id, `${prefix}c:`)),
    );
    const contended = await Promise.all(contenders.map((limiter) => timeStarts(limiter, samples)));
    results['Redis tryStart, 3 instances at once (ms)'] = percentiles(contended.flat());

    // A call blocked on concurrency on instance B; instance A releases the only slot.
    const one = { maxConcurrent: 1 };
    const holder = shared(await connect(), 'holder', `${prefix}w:`, one);
    const waiter = shared(await connect(), 'waiter', `${prefix}w:`, one);
    // As Troupe does: the release channel wakes the waiting queue; the poll is the fallback.
    const subscriber = createRedisConnection(url, { offlineQueue: true, lazy: true });
    await subscriber.connect();
    let wake: (() => void) | undefined;
    subscriber.on('message', () => wake?.());
    await subscriber.subscribe(waiter.releaseChannel);
    const waits: number[] = [];
    for (let round = 0; round < 100; round++) {
      const held = await holder.tryStart(1);
      if (!held.started) throw new Error('the slot should be free');
      const blocked = await waiter.tryStart(1);
      if (blocked.started) throw new Error('the slot should be taken');
      // Release after a random delay, then dispatch as the queue does: at retryAt, or when woken.
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 30));
      let signalled = false;
      let resolveWait: (() => void) | undefined;
      wake = () => {
        signalled = true;
        resolveWait?.();
      };
      await holder.release(held.permit);
      const releasedAt = performance.now();
      let retryAt = blocked.retryAt ?? systemClock.now();
      for (;;) {
        await new Promise<void>((resolve) => {
          if (signalled) return resolve();
          const timer = setTimeout(resolve, Math.max(0, retryAt - systemClock.now()));
          resolveWait = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        signalled = false;
        const decision = await waiter.tryStart(1);
        if (decision.started) {
          waits.push(performance.now() - releasedAt);
          await waiter.release(decision.permit);
          break;
        }
        retryAt = decision.retryAt ?? systemClock.now() + 25;
      }
      wake = undefined;
    }
    results['cross-instance release → start (ms)'] = percentiles(waits);
    subscriber.disconnect();
    for (const limiter of [alone, ...contenders, holder, waiter]) await limiter.close();
  } finally {
    if (clients[0]) {
      let cursor = '0';
      do {
        const [next, keys] = await clients[0].scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await clients[0].del(...keys);
      } while (cursor !== '0');
    }
    for (const redis of clients) redis.disconnect();
  }
  console.log(JSON.stringify({ url, samples, results }, null, 2));
}

void main();

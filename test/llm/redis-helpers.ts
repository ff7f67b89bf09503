import { randomUUID } from 'node:crypto';
import type Redis from 'ioredis';
import { createRedisConnection } from '../../api/redis/redis-connection';

/** The real Redis the Redis tests run against (CI starts one: .ci/run). */
export const REDIS_URL = process.env.REDIS_TEST_URL ?? 'redis://127.0.0.1:6379';

/** A key prefix no other test (or instance) uses; removed by `removeKeys` (bullmq's style). */
export function randomPrefix(): string {
  return `troupe-test:${randomUUID().slice(0, 12)}:`;
}

/** A connected client as production builds them (no offline queue, command timeout). */
export async function connectRedis(url = REDIS_URL, commandTimeoutMs = 2_000): Promise<Redis> {
  const redis = createRedisConnection(url, { commandTimeoutMs, lazy: true });
  await redis.connect();
  return redis;
}

export async function removeKeys(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
}

/** Waits for a condition checked every 20 ms, failing after `timeoutMs` (real time: Redis's). */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

import { randomUUID } from 'node:crypto';
import type Redis from 'ioredis';
import { createRedisConnection } from '../../api/redis/redis-connection';

/** The real Redis the Redis tests run against (CI starts one: .ci/run). */
export const REDIS_URL = process.env.REDIS_TEST_URL ?? 'redis://127.0.0.1:6379';

/** A key prefix no other test (or instance) uses; removed by `removeKeys` (bullmq's style). */
export function randomPrefix(): string {
  return `troupe-test:${randomUUID().slice(0, 12)}:`;
}

/**
 * A connected client as production builds them (no offline queue, command timeout), once it is
 * ready. Its ready check (INFO) is a command like any other: on a loaded machine it can outlast a
 * short command timeout, and ioredis then drops the connection (`connect()` rejects with "Connection
 * is closed.") and connects again on its own. The test waits for that, up to `readyWithinMs`,
 * rather than failing over its setup.
 */
export async function connectRedis(
  url = REDIS_URL,
  commandTimeoutMs = 2_000,
  readyWithinMs = 10_000,
): Promise<Redis> {
  const redis = createRedisConnection(url, { commandTimeoutMs, lazy: true });
  const ready = new Promise<void>((resolve) => redis.once('ready', () => resolve()));
  redis.connect().catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`Redis at ${url} not ready within ${readyWithinMs} ms`)),
      readyWithinMs,
    );
  });
  try {
    await Promise.race([ready, late]);
  } catch (error) {
    redis.disconnect();
    throw error;
  } finally {
    clearTimeout(timer);
  }
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

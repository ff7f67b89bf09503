import { spawnSync } from 'node:child_process';

/** The Redis the Redis-backed tests use: REDIS_URL, else the local default. */
export const TEST_REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * A synchronous reachability check (a TCP connect in a child process), so a suite can choose
 * `describe.skip` — reported as skipped, never as passed — when no Redis answers. The bound is
 * generous: a loaded 2-core machine can take seconds to start a node process.
 */
export function redisReachable(url = TEST_REDIS_URL): boolean {
  const { hostname, port } = new URL(url);
  const probe = spawnSync(
    process.execPath,
    [
      '-e',
      `require('net').connect(${Number(port || 6379)}, ${JSON.stringify(hostname)})` +
        `.on('connect', () => process.exit(0)).on('error', () => process.exit(1))`,
    ],
    { timeout: 20_000 },
  );
  return probe.status === 0;
}

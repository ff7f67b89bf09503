import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import type { ChatRecord } from './chat-client';
import { findNginx, startNginx, type RunningNginx } from './nginx-process';
import { startTcpProxy, type TcpProxy } from './tcp-proxy';
import {
  startTroupeServer,
  troupeEnvAgainstSim,
  type ChildServer,
  type TroupeRuntime,
} from './server-processes';

/** The `cluster` scenario's shape: N Troupe instances behind nginx, sharing one Redis. */
export interface ClusterSpec {
  instances: number;
  /** SIGKILL one instance at this fraction of the arrival phase (absent: nobody is killed). */
  killAtFraction?: number;
  /** Redis unreachable for every instance from this fraction of the arrival phase, for durationS. */
  redisOutage?: { atFraction: number; durationS: number };
}

export interface ClusterTarget {
  /** nginx's URL: where the load goes. */
  url: string;
  /** The Redis the instances share, read directly (bypassing a proxy), and their key prefix. */
  redisUrl: string;
  prefix: string;
  instances: ChildServer[];
  /** Kills the last instance with SIGKILL (an instance crash, as the scenario's failure). */
  killOne(): { pid: number; at: number };
  /** Cuts every instance off Redis (redisOutage runs only), then lets them reach it again. */
  cutRedis(): void;
  restoreRedis(): void;
  stop(): Promise<void>;
}

/** The Redis the benchmark's instances share (REDIS_URL, else the machine's own). */
const BENCH_REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

/**
 * Starts N Troupes against one sim-llm (each its own data directory, all one Redis key prefix,
 * each given the whole quota — what the shared limiter must make safe), then nginx in front of
 * them with deploy/nginx/troupe.conf.
 */
export async function startClusterTarget(options: {
  spec: ClusterSpec;
  simUrl: string;
  dataDir: string;
  env: Record<string, string>;
  runtime: TroupeRuntime;
  directory: string;
}): Promise<ClusterTarget> {
  const nginxBinary = findNginx();
  if (!nginxBinary) throw new Error('the cluster scenario needs nginx: apt-get install -y nginx');
  const prefix = `troupe-bench-${randomBytes(4).toString('hex')}:`;
  const instances: ChildServer[] = [];
  let nginx: RunningNginx | undefined;
  // The outage variant reaches Redis through a proxy the scenario can cut.
  let proxy: TcpProxy | undefined;
  const stop = async () => {
    if (nginx) fs.writeFileSync(path.join(options.directory, 'nginx.log'), nginx.stderr());
    await nginx?.stop();
    await Promise.all(instances.map((instance) => instance.stop()));
    await proxy?.close();
    await deletePrefix(prefix);
  };
  try {
    if (options.spec.redisOutage) {
      const redis = new URL(BENCH_REDIS_URL);
      proxy = await startTcpProxy(Number(redis.port || 6379), redis.hostname);
    }
    const redisUrl = proxy?.url ?? BENCH_REDIS_URL;
    for (let index = 0; index < options.spec.instances; index++) {
      const dataDir = path.join(options.dataDir, `instance-${index}`);
      fs.mkdirSync(dataDir, { recursive: true });
      instances.push(
        await startTroupeServer(
          {
            ...troupeEnvAgainstSim(options.simUrl, dataDir),
            REDIS_URL: redisUrl,
            REDIS_KEY_PREFIX: prefix,
            ...options.env,
          },
          options.runtime,
          path.join(options.directory, `troupe-${index}.log`),
        ),
      );
    }
    nginx = await startNginx(
      nginxBinary,
      instances.map((instance) => new URL(instance.url).host),
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    url: nginx.url,
    redisUrl: BENCH_REDIS_URL,
    prefix,
    instances,
    killOne() {
      const victim = instances[instances.length - 1];
      process.kill(victim.pid, 'SIGKILL');
      return { pid: victim.pid, at: Date.now() };
    },
    cutRedis: () => proxy?.cut(),
    restoreRedis: () => proxy?.restore(),
    stop,
  };
}

/** How the chats fared across the kill: resumed elsewhere, sent again, or lost. */
export function failoverSummary(records: ChatRecord[]): {
  resumed: number;
  resubmitted: number;
  completedAfterFailover: number;
} {
  const resumed = records.filter((record) => record.failover === 'resumed').length;
  const resubmitted = records.filter((record) => record.failover === 'resubmitted').length;
  const completedAfterFailover = records.filter(
    (record) => record.failover !== undefined && record.outcome === 'completed',
  ).length;
  return { resumed, resubmitted, completedAfterFailover };
}

async function deletePrefix(prefix: string): Promise<void> {
  const client = new Redis(BENCH_REDIS_URL, { maxRetriesPerRequest: 1, lazyConnect: true });
  try {
    await client.connect();
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await client.del(...keys);
    } while (cursor !== '0');
  } catch {
    // Keys expire on their own; a failed clean-up leaves them to do so.
  } finally {
    client.disconnect();
  }
}

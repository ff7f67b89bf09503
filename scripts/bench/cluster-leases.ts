import { Redis } from 'ioredis';
import type { ClusterTarget } from './cluster-target';
import type { ChildServer } from './server-processes';

/**
 * After a cluster run's burst: the leak check (the concurrency leases left in Redis, read directly
 * from Redis, beside what each instance says it holds and runs) and the dispatch path's cost (each
 * instance's histogram of a start's round trip to Redis, summed).
 */
export interface LeaseCheck {
  /** Leases in `<prefix>llm:leases` whose expiry is still ahead (Redis's clock): each holds a slot. */
  leasesInRedis: number;
  /** Every member of the set, lapsed ones included (reaped at the next start). */
  leasesStored: number;
  /** The instances' own figures (GET /api/queue/status `queue.leases.instance`). */
  instances: Array<{ url: string; held?: number; unreleased?: number; callsRunning?: number }>;
}

export async function checkLeases(
  redisUrl: string,
  prefix: string,
  instances: ChildServer[],
): Promise<LeaseCheck> {
  const client = new Redis(redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true });
  try {
    await client.connect();
    const key = `${prefix}llm:leases`;
    const [seconds, micros] = await client.time();
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    const [leasesInRedis, leasesStored] = await Promise.all([
      client.zcount(key, `(${now}`, '+inf'),
      client.zcard(key),
    ]);
    const figures = await Promise.all(
      instances.map(async (instance) => {
        const status = await fetchJson<{
          queue?: { leases?: { instance?: LeaseCheck['instances'][number] } };
        }>(`${instance.url}/api/queue/status`);
        return { url: instance.url, ...(status?.queue?.leases?.instance ?? {}) };
      }),
    );
    return { leasesInRedis, leasesStored, instances: figures };
  } finally {
    client.disconnect();
  }
}

export interface DispatchLatency {
  starts: number;
  /** From the summed histogram, interpolated inside its bucket (ms). */
  p50Ms: number;
  p99Ms: number;
  /** Share of starts whose round trip took at most 2 ms. */
  within2Ms: number;
}

/** Sums `troupe_llm_redis_dispatch_seconds` over the instances (live ones) and reads its percentiles. */
export async function dispatchLatency(instances: ChildServer[]): Promise<DispatchLatency | undefined> {
  const buckets = new Map<number, number>();
  for (const instance of instances) {
    const text = await fetchText(`${instance.url}/metrics`);
    if (!text) continue;
    for (const match of text.matchAll(/^troupe_llm_redis_dispatch_seconds_bucket\{le="([^"]+)"\} (\d+)/gm)) {
      const le = match[1] === '+Inf' ? Infinity : Number(match[1]);
      buckets.set(le, (buckets.get(le) ?? 0) + Number(match[2]));
    }
  }
  const sorted = [...buckets.entries()].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (total === 0) return undefined;
  const quantile = (q: number) => {
    const rank = q * total;
    let lower = 0;
    let below = 0;
    for (const [le, count] of sorted) {
      if (count >= rank) {
        if (!Number.isFinite(le)) return lower * 1000;
        const within = count - below;
        return (lower + (within > 0 ? ((rank - below) / within) * (le - lower) : 0)) * 1000;
      }
      lower = le;
      below = count;
    }
    return lower * 1000;
  };
  return {
    starts: total,
    p50Ms: quantile(0.5),
    p99Ms: quantile(0.99),
    within2Ms: (buckets.get(0.002) ?? 0) / total,
  };
}

async function fetchText(url: string): Promise<string | undefined> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
    return response.ok ? await response.text() : undefined;
  } catch {
    return undefined;
  }
}

async function fetchJson<T>(url: string): Promise<T | undefined> {
  const text = await fetchText(url);
  try {
    return text === undefined ? undefined : (JSON.parse(text) as T);
  } catch {
    return undefined;
  }
}

/**
 * What Redis itself spent on scripts (INFO commandstats: every EVALSHA, starts, releases, run log
 * and all): read before and after the burst, the difference says how much of the dispatch path's
 * round trip is Redis's work and how much the instances' own wait to read the reply.
 */
export interface RedisScriptWork {
  calls: number;
  usec: number;
}

export async function redisScriptWork(redisUrl: string): Promise<RedisScriptWork | undefined> {
  const client = new Redis(redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true });
  try {
    await client.connect();
    const info = await client.info('commandstats');
    let calls = 0;
    let usec = 0;
    for (const match of info.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+),usec=(\d+)/gm)) {
      calls += Number(match[1]);
      usec += Number(match[2]);
    }
    return { calls, usec };
  } catch {
    return undefined;
  } finally {
    client.disconnect();
  }
}

/** Both, a moment after the burst drained (the last releases land); a killed instance is skipped. */
export async function inspectCluster(
  cluster: ClusterTarget,
  lastKilled: boolean,
): Promise<{ leases?: LeaseCheck; dispatch?: DispatchLatency }> {
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const alive = lastKilled ? cluster.instances.slice(0, -1) : cluster.instances;
  const leases = await checkLeases(cluster.redisUrl, cluster.prefix, alive).catch(() => undefined);
  return { leases, dispatch: await dispatchLatency(alive) };
}

/** The report's line for them. */
export function leaseLine(
  check: LeaseCheck | undefined,
  latency: DispatchLatency | undefined,
  scripts?: { before?: RedisScriptWork; after?: RedisScriptWork },
): string {
  const parts: string[] = [];
  if (check) {
    const held = check.instances.map((instance) => instance.held ?? '?').join('/');
    const running = check.instances.map((instance) => instance.callsRunning ?? '?').join('/');
    parts.push(
      `leases left in Redis after the burst: ${check.leasesInRedis} live (${check.leasesStored} stored); ` +
        `instances hold ${held}, run ${running}`,
    );
  }
  if (latency)
    parts.push(
      `Redis dispatch path: p50 ${latency.p50Ms.toFixed(2)} ms, p99 ${latency.p99Ms.toFixed(2)} ms over ` +
        `${latency.starts} asks, each up to 16 starts (${(latency.within2Ms * 100).toFixed(1)} % within 2 ms; ` +
        `the instance's round trip, its event loop's lag included)`,
    );
  if (scripts?.before && scripts.after && scripts.after.calls > scripts.before.calls) {
    const calls = scripts.after.calls - scripts.before.calls;
    const usec = scripts.after.usec - scripts.before.usec;
    parts.push(
      `Redis itself: ${(usec / calls).toFixed(1)} µs per script over ${calls} script calls of every kind ` +
        `(${(usec / 1000).toFixed(0)} ms of Redis time in all)`,
    );
  }
  return parts.join('\n');
}

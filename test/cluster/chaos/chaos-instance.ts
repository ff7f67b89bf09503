import { AGENT_NAMES } from '../../../api/agents/agent-name';
import { systemClock } from '../../../api/clock';
import { createCluster } from '../../../api/cluster/create-cluster';
import { emptyFigures } from '../../../api/cluster/instance-registry';
import { RequestQueue } from '../../../api/llm/request-queue';
import type { Config } from '../../../config';

/**
 * One instance of the chaos test (test/cluster/chaos.redis.test.ts), a process of its own so that
 * the test can SIGKILL and SIGSTOP it: the shared quota as Troupe builds it (createCluster: the Redis
 * limiter behind its fail-safe, the registry) under a request queue, and workers that keep calling
 * the test's provider. Writes "ready" once started; "pause" and "resume" on stdin stop and restart
 * the load (a quiet moment, to compare the leases with the calls in flight).
 */
async function main(): Promise<void> {
  const env = process.env;
  const concurrency = Number(env.CHAOS_CONCURRENCY);
  const workers = Number(env.CHAOS_WORKERS);
  const provider = String(env.CHAOS_PROVIDER_URL);
  const llm = { maxConcurrent: concurrency, maxRpm: 1_000_000, maxTpm: 0, timeoutMs: 5_000 };
  // Built after the cluster, which wakes it when the limiter's mode changes or a slot frees.
  const built: { queue?: RequestQueue } = {};
  const cluster = await createCluster({
    config: {
      llm: llm as unknown as Config['llm'],
      redisUrl: String(env.CHAOS_REDIS_URL),
      redisKeyPrefix: String(env.CHAOS_PREFIX),
    },
    clock: systemClock,
    tuning: {
      leaseMs: Number(env.CHAOS_LEASE_MS),
      renewEveryMs: Number(env.CHAOS_RENEW_EVERY_MS),
      heartbeatMs: 300,
      instanceTtlMs: 1_500,
      probeEveryMs: 200,
      commandTimeoutMs: 300,
    },
    onLimiterModeChange: () => built.queue?.wake(),
    onSlotReleased: () => built.queue?.wake(),
  });
  const running = new RequestQueue({
    clock: systemClock,
    limiter: cluster.limiter,
    queueMax: 10_000,
    priorityOrder: AGENT_NAMES,
  });
  built.queue = running;
  await cluster.start({
    figures: () => ({
      ...emptyFigures(),
      activeRequests: running.activeCount,
      limiter: cluster.limiter.mode,
    }),
    apply: () => undefined,
  });
  let loading = true;
  const work = async () => {
    while (loading) {
      let slot;
      try {
        slot = await running.acquire(
          {
            agentType: 'host',
            userId: cluster.instanceId,
            conversationId: 'chaos',
            estimatedTokens: 1,
            deadline: systemClock.now() + 5_000,
          },
          new AbortController().signal,
        );
      } catch {
        continue;
      }
      try {
        await fetch(`${provider}/call?instance=${encodeURIComponent(String(env.CHAOS_NAME))}`);
      } catch {
        // The provider's answer is the test's business.
      } finally {
        slot.release();
      }
    }
  };
  let loops = Array.from({ length: workers }, () => work());
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (text: string) => {
    if (text.includes('pause')) {
      loading = false;
      void Promise.all(loops).then(() => process.stdout.write('paused\n'));
    } else if (text.includes('resume') && !loading) {
      loading = true;
      loops = Array.from({ length: workers }, () => work());
    }
  });
  process.stdout.write('ready\n');
}

void main();

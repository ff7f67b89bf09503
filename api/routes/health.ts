import { Router } from 'express';
import type { LlmControl } from '../llm/llm-control';
import { percentText } from '../metrics/percent-text';
import type { ProcessUsageSampler } from '../metrics/process-usage';
import type { Store } from '../store/store';
import type { RunRegistry } from '../streaming/run-registry';
import type { ToolExecutor } from '../tools/tool-executor';

type Level = 'healthy' | 'degraded' | 'unhealthy';

const STORE_PING_TIMEOUT_MS = 2000;
/** A provider failure this recent (a 5xx, a hang past the first-byte timeout) makes the queue degraded. */
const RECENT_PROVIDER_FAILURE_MS = 60_000;

/**
 * GET /api/health — readiness in the brief's shape, kept exactly: `services.*` are strings and
 * `metrics.cpu` / `metrics.memory` are `"45%"` strings (see ProcessUsageSampler for what they
 * measure); everything else an operator may want sits in `details`. HTTP 503 when unhealthy.
 * GET /api/health/live — liveness: answers while the event loop runs, needs no dependency.
 */
export function healthRouter(deps: {
  scheduler: LlmControl;
  store: Store;
  tools: ToolExecutor;
  runs: RunRegistry;
  usage: ProcessUsageSampler;
  queueMax: number;
  /** True once shutdown began: readiness then fails so load balancers stop sending. */
  isDraining?: () => boolean;
  /** Set with REDIS_URL: the shared limits' state (the fail-safe limiter's). */
  redis?: { status(): { mode: string; reason?: string; instances: number } };
}): Router {
  const router = Router();

  router.get('/health/live', (_req, res) => {
    res.json({ status: 'ok', uptimeSeconds: Math.round(process.uptime()) });
  });

  router.get('/health', async (_req, res) => {
    const queue = deps.scheduler.status();
    const breaker = deps.scheduler.breakerState();
    const fill = queue.queueLength / deps.queueMax;
    const availability = deps.scheduler.providerAvailability();
    // Told at once, not after the breaker's window fills: the last provider verdict was a failure.
    const failing =
      availability.recentFailure !== undefined &&
      availability.recentFailure.ageMs < RECENT_PROVIDER_FAILURE_MS;
    const llmQueue: Level =
      breaker === 'open'
        ? 'unhealthy'
        : breaker === 'half_open' || fill >= 0.8 || queue.paused || queue.rateLimited || failing
          ? 'degraded'
          : 'healthy';

    const database = await pingStore(deps.store);

    const toolList = deps.tools.status().tools;
    // The executor's own verdict (its worst tool), in this page's words.
    const toolHealth = deps.tools.health();
    const tools: Level = toolHealth === 'unavailable' ? 'unhealthy' : toolHealth;
    // Redis down is degraded, not unhealthy: each instance keeps serving on its share of the quota.
    const redisState = deps.redis?.status();
    const redis: Level | undefined = redisState && (redisState.mode === 'shared' ? 'healthy' : 'degraded');
    const levels = [llmQueue, database.status, tools, ...(redis ? [redis] : [])];
    // Tools degrade gracefully (fallbacks), so they never make the whole service unhealthy.
    const draining = deps.isDraining?.() ?? false;
    const overall: Level =
      draining || llmQueue === 'unhealthy' || database.status === 'unhealthy'
        ? 'unhealthy'
        : levels.some((level) => level !== 'healthy')
          ? 'degraded'
          : 'healthy';

    const usage = deps.usage.sample();
    const memory = process.memoryUsage();
    const activeRuns = deps.runs.active();
    res.status(overall === 'unhealthy' ? 503 : 200).json({
      status: overall,
      ...(draining ? { draining: true } : {}),
      // The brief's three services; `redis` beside them only when REDIS_URL is set.
      services: { llmQueue, database: database.status, tools, ...(redis ? { redis } : {}) },
      metrics: {
        activeUsers: new Set(activeRuns.map((run) => run.userId)).size,
        queueLength: queue.queueLength,
        cpu: percentText(usage.cpuPercent),
        memory: percentText(usage.memoryPercent),
      },
      timestamp: Date.now(),
      details: {
        llmQueue: {
          circuit: breaker,
          // Why: refusing every call until a person acts (quota, billing, key, model), or failing now.
          ...(availability.unavailable
            ? {
                unavailable: {
                  reason: availability.unavailable.reason,
                  providerCode: availability.unavailable.providerCode,
                  message: availability.unavailable.providerMessage,
                  probeInMs: Math.round(availability.unavailable.probeInMs),
                },
              }
            : {}),
          ...(failing ? { recentFailure: availability.recentFailure } : {}),
          paused: queue.paused,
          rateLimited: queue.rateLimited,
          providerHoldMs: queue.providerHoldMs,
          queueLength: queue.queueLength,
          activeRequests: queue.activeRequests,
          queueMax: deps.queueMax,
        },
        database: { latencyMs: database.latencyMs, ...(database.error ? { error: database.error } : {}) },
        tools: Object.fromEntries(toolList.map((tool) => [tool.name, tool.status])),
        // Why Redis is degraded (the fail-safe's mode and reason), and the instance count N.
        ...(redisState ? { redis: redisState } : {}),
        activeRuns: activeRuns.length,
        cpu: { of: 'one core, since the previous health request', intervalMs: usage.intervalMs },
        memory: {
          of: usage.memoryLimitSource === 'cgroup' ? 'the cgroup memory limit' : 'system memory',
          rssMB: Math.round(usage.rssBytes / 1048576),
          limitMB: Math.round(usage.memoryLimitBytes / 1048576),
          heapUsedMB: Math.round(memory.heapUsed / 1048576),
        },
      },
    });
  });
  return router;
}

async function pingStore(store: Store): Promise<{ status: Level; latencyMs: number; error?: string }> {
  const startedAt = Date.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      store.ping(),
      new Promise((_resolve, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${STORE_PING_TIMEOUT_MS} ms`)),
          STORE_PING_TIMEOUT_MS,
        );
      }),
    ]);
    return { status: 'healthy', latencyMs: Date.now() - startedAt };
  } catch (error) {
    return { status: 'unhealthy', latencyMs: Date.now() - startedAt, error: (error as Error).message };
  } finally {
    clearTimeout(timer);
  }
}

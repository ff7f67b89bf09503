import os from 'node:os';
import { Router } from 'express';
import type { LlmScheduler } from '../llm/llm-scheduler';
import type { Store } from '../store/store';
import type { RunRegistry } from '../streaming/run-registry';
import type { ToolExecutor } from '../tools/tool-executor';

type Level = 'healthy' | 'degraded' | 'unhealthy';

const STORE_PING_TIMEOUT_MS = 2000;

/**
 * GET /api/health — readiness in the brief's shape: the LLM queue (breaker and queue fill), the
 * database (a real round trip) and the tools; HTTP 503 when unhealthy.
 * GET /api/health/live — liveness: answers while the event loop runs, needs no dependency.
 */
export function healthRouter(deps: {
  scheduler: LlmScheduler;
  store: Store;
  tools: ToolExecutor;
  runs: RunRegistry;
  queueMax: number;
}): Router {
  const router = Router();
  const cpu = cpuSampler();

  router.get('/health/live', (_req, res) => {
    res.json({ status: 'ok', uptimeSeconds: Math.round(process.uptime()) });
  });

  router.get('/health', async (_req, res) => {
    const queue = deps.scheduler.status();
    const breaker = deps.scheduler.breakerState();
    const fill = queue.queueLength / deps.queueMax;
    const llmQueue: Level =
      breaker === 'open'
        ? 'unhealthy'
        : breaker === 'half_open' || fill >= 0.8 || queue.paused || queue.rateLimited
          ? 'degraded'
          : 'healthy';

    const database = await pingStore(deps.store);

    const toolList = deps.tools.status().tools;
    // The executor's own verdict (its worst tool), in this page's words.
    const toolHealth = deps.tools.health();
    const tools: Level = toolHealth === 'unavailable' ? 'unhealthy' : toolHealth;
    // Tools degrade gracefully (fallbacks), so they never make the whole service unhealthy.
    const overall: Level =
      llmQueue === 'unhealthy' || database.status === 'unhealthy'
        ? 'unhealthy'
        : [llmQueue, database.status, tools].includes('unhealthy') ||
            [llmQueue, database.status, tools].includes('degraded')
          ? 'degraded'
          : 'healthy';

    const memory = process.memoryUsage();
    const activeRuns = deps.runs.active();
    res.status(overall === 'unhealthy' ? 503 : 200).json({
      status: overall,
      timestamp: new Date().toISOString(),
      services: {
        llmQueue: {
          status: llmQueue,
          circuit: breaker,
          paused: queue.paused,
          rateLimited: queue.rateLimited,
          providerHoldMs: queue.providerHoldMs,
          queueLength: queue.queueLength,
          activeRequests: queue.activeRequests,
          queueMax: deps.queueMax,
        },
        database,
        tools: { status: tools, tools: Object.fromEntries(toolList.map((tool) => [tool.name, tool.status])) },
      },
      metrics: {
        activeUsers: new Set(activeRuns.map((run) => run.userId)).size,
        activeRuns: activeRuns.length,
        queueLength: queue.queueLength,
        cpu: { percent: cpu(), loadAverage: os.loadavg().map((load) => Math.round(load * 100) / 100) },
        memory: {
          rssMB: Math.round(memory.rss / 1048576),
          heapUsedMB: Math.round(memory.heapUsed / 1048576),
          heapTotalMB: Math.round(memory.heapTotal / 1048576),
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

/** CPU use of this process since the previous call, in percent of one core. */
function cpuSampler(): () => number {
  let lastUsage = process.cpuUsage();
  let lastTime = process.hrtime.bigint();
  return () => {
    const usage = process.cpuUsage(lastUsage);
    const now = process.hrtime.bigint();
    const elapsedMicros = Number(now - lastTime) / 1000;
    lastUsage = process.cpuUsage();
    lastTime = now;
    return elapsedMicros > 0 ? Math.round(((usage.user + usage.system) / elapsedMicros) * 1000) / 10 : 0;
  };
}

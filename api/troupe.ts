import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config';
import { ChatService } from './agents/chat-service';
import { Orchestrator } from './agents/orchestrator';
import { createApp } from './app';
import { createCluster, type Cluster, type CreateClusterOptions } from './cluster/create-cluster';
import type { ControlCommand } from './cluster/cluster-control';
import { systemClock, type Clock } from './clock';
import { AppError } from './errors';
import { createLogger, type Logger } from './logger';
import { createLlmScheduler } from './llm/create-llm-scheduler';
import type { LlmScheduler } from './llm/llm-scheduler';
import type { Provider } from './llm/provider';
import { createProvider } from './llm/providers/create-provider';
import { createStore } from './store/create-store';
import type { Store } from './store/store';
import { RunRegistry } from './streaming/run-registry';
import { TroupeMetrics } from './metrics/troupe-metrics';
import { healthRouter } from './routes/health';
import { metricsRouter } from './routes/metrics';
import { queueRouter } from './routes/queue';
import { toolSystemRouter } from './routes/tool-system';
import { createSseStreaming } from './streaming/sse-streaming';
import { createToolSystem } from './tools/create-tool-system';
import { OfflineSearch } from './tools/plugins/search-backends/offline-search';
import type { ToolExecutor } from './tools/tool-executor';

export interface TroupeOverrides {
  clock?: Clock;
  logger?: Logger;
  provider?: Provider;
  store?: Store;
  /** Build the search index right after start (default true; tests that never search skip it). */
  warmUp?: boolean;
  /** Shorter leases, heartbeats and probes for tests of the shared (REDIS_URL) mode. */
  clusterTuning?: CreateClusterOptions['tuning'];
}

export interface Troupe {
  url: string;
  port: number;
  server: http.Server;
  config: Config;
  provider: Provider;
  store: Store;
  scheduler: LlmScheduler;
  tools: ToolExecutor;
  runs: RunRegistry;
  /** Stops accepting, ends open streams with `shutting_down`, closes the store. Idempotent. */
  close(): Promise<void>;
}

/**
 * The composition root: builds every part once from the config and hands each what it needs
 * (no globals), then listens. Tests call it with a free port; server.ts calls it for real.
 */
export async function startTroupe(config: Config, overrides: TroupeOverrides = {}): Promise<Troupe> {
  const clock = overrides.clock ?? systemClock;
  const logger = overrides.logger ?? createLogger(config.logLevel);
  const store = overrides.store ?? createStore(config);
  await store.init();
  const provider = overrides.provider ?? createProvider(config, clock);
  const metrics = new TroupeMetrics();
  // With REDIS_URL the quota, admission inputs and operator commands are shared by every instance.
  // The limiter's mode change (Redis lost or back) must wake dispatch of a scheduler built after it.
  let wakeDispatch = () => {};
  const cluster: Cluster | undefined = config.redisUrl
    ? await createCluster({
        config,
        clock,
        logger,
        tuning: overrides.clusterTuning,
        onLimiterModeChange: () => wakeDispatch(),
        onSlotReleased: () => wakeDispatch(),
      })
    : undefined;
  const scheduler = createLlmScheduler({
    config,
    provider,
    clock,
    logger,
    metrics,
    ...(cluster
      ? { limiter: { limiter: cluster.limiter, aimd: cluster.aimd }, otherInstances: cluster.registry }
      : {}),
  });
  const offlineSearch = new OfflineSearch();
  const tools = createToolSystem(config, { clock, logger, offlineSearch });
  const runs = new RunRegistry({
    clock,
    retentionMs: config.sse.runLogRetentionMs,
    maxEventsPerRun: config.sse.runLogMaxEvents,
  });
  const orchestrator = new Orchestrator({
    llm: scheduler,
    store,
    clock,
    logger,
    tools,
    criticMaxRounds: config.agents.criticMaxRounds,
    toolMaxRounds: config.agents.toolMaxRounds,
    maxOutputTokens: config.llm.maxOutputTokens,
  });
  const chat = new ChatService({
    store,
    llm: scheduler,
    pause: scheduler,
    runs,
    orchestrator,
    clock,
    logger,
    userMaxActiveChats: config.userMaxActiveChats,
    chatTimeoutMs: config.llm.chatTimeoutMs,
  });
  wakeDispatch = () => scheduler.queue.wake();
  const sse = createSseStreaming(config, { clock, logger, runHolds: scheduler });
  if (cluster) {
    const shared = scheduler;
    const apply = (command: ControlCommand) => {
      logger.warn({ command }, 'Operator command from another instance');
      if (command.command === 'pause') {
        shared.pause({ refuseNewChats: command.refuseNewChats });
        chat.announcePause();
      } else if (command.command === 'resume') shared.resume();
      else shared.clear();
    };
    await cluster.start({
      apply,
      figures: () => {
        const status = shared.status();
        return {
          queueLength: status.queueLength,
          activeRequests: shared.queue.activeCount,
          admittedChats: status.admittedChats,
          paused: status.paused,
          totalProcessed: status.totalProcessed,
          totalSuccess: status.totalSuccess,
          totalFailed: status.totalFailed,
          totalTimeout: status.totalTimeout,
          limiter: cluster.limiter.mode,
        };
      },
    });
  }
  metrics.observe({ scheduler, tools, sse: () => sse.status() });
  const app = createApp({
    config,
    logger,
    store,
    chat,
    runs,
    sse,
    apiRouters: [
      queueRouter({
        scheduler,
        config,
        chat,
        ...(cluster
          ? {
              cluster: {
                self: () => cluster.registry.self(),
                instances: () => cluster.registry.instances(),
                broadcast: (command) => cluster.control.publish(command),
              },
            }
          : {}),
      }),
      toolSystemRouter({ tools }),
      healthRouter({
        scheduler,
        store,
        tools,
        runs,
        queueMax: config.llm.queueMax,
        ...(cluster ? { redis: cluster.limiter } : {}),
      }),
    ],
    rootRouters: [metricsRouter({ metrics })],
  });

  const server = http.createServer(app);
  // Streams are long-lived; Node's default request timeout (5 min) would cut slow chats.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const url = `http://${host}:${port}`;
  logger.info({ url, provider: provider.name }, 'Troupe is listening');
  if (cluster) {
    logger.info(
      { instanceId: cluster.instanceId, instances: cluster.registry.count(), limiter: cluster.limiter.mode },
      'Sharing the LLM quota with the other instances through Redis',
    );
  }
  if (overrides.warmUp ?? true) {
    // Indexing the search corpus takes ~1 s of CPU: do it now, not during the first user's chat.
    setImmediate(() => {
      const startedAt = Date.now();
      logger.info({ documents: offlineSearch.size(), ms: Date.now() - startedAt }, 'search index ready');
    });
  }

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      logger.info('shutting down: refusing new connections, ending open streams');
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      sse.close();
      const active = runs.active();
      for (const run of active) run.cancel(new AppError('shutting_down'));
      await withTimeout(Promise.all(active.map((run) => run.finished)), 5000);
      // Give the final `error` events a moment to flush, then drop idle keep-alive sockets.
      await new Promise((resolve) => setImmediate(resolve));
      server.closeIdleConnections();
      await withTimeout(serverClosed, 2000);
      server.closeAllConnections();
      await scheduler.close();
      await cluster?.close();
      tools.close();
      runs.clear();
      await provider.close?.();
      await store.close();
      logger.info('shut down cleanly');
    })());

  return { url, port, server, config, provider, store, scheduler, tools, runs, close };
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

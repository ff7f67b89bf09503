import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config';
import { ChatService } from './agents/chat-service';
import { Orchestrator } from './agents/orchestrator';
import { createApp } from './app';
import { systemClock, type Clock } from './clock';
import { AppError } from './errors';
import { createLogger, type Logger } from './logger';
import { CachingGateway } from './llm/cache/caching-gateway';
import { disabledCacheStatus } from './llm/cache/cache-stats';
import { createResponseCache } from './llm/cache/create-response-cache';
import { schedulerCapacityProbe } from './llm/capacity-probe';
import type { LlmGateway } from './llm/llm-gateway';
import { LlmScheduler } from './llm/llm-scheduler';
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
  /** The gateway agents call: the response cache in front of the scheduler, or the scheduler itself. */
  llm: LlmGateway;
  /** The response cache; absent with LLM_CACHE=off. */
  responseCache?: CachingGateway;
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
  const scheduler = new LlmScheduler({ config, provider, clock, logger, metrics });
  const cacheBackend = config.llmCache.enabled ? createResponseCache(config, { clock, logger }) : undefined;
  await cacheBackend?.open?.();
  const responseCache = cacheBackend
    ? new CachingGateway({
        inner: scheduler,
        cache: cacheBackend,
        scope: { provider: provider.name, model: config.llm.model ?? provider.name },
        ttlSeconds: config.llmCache.ttlSeconds,
        clock,
        logger,
        metrics,
      })
    : undefined;
  const llm: LlmGateway = responseCache ?? scheduler;
  const offlineSearch = new OfflineSearch();
  const tools = createToolSystem(config, { clock, logger, offlineSearch });
  const runs = new RunRegistry({
    clock,
    retentionMs: config.sse.runLogRetentionMs,
    maxEventsPerRun: config.sse.runLogMaxEvents,
  });
  const orchestrator = new Orchestrator({
    llm,
    store,
    clock,
    logger,
    tools,
    criticMaxRounds: config.agents.criticMaxRounds,
    toolMaxRounds: config.agents.toolMaxRounds,
    maxOutputTokens: config.llm.maxOutputTokens,
    parallel: config.agents.parallel,
    capacity: schedulerCapacityProbe(scheduler),
    toolMaxParallel: config.agents.toolMaxParallel,
    speculation: metrics,
  });
  const chat = new ChatService({
    store,
    llm,
    runs,
    orchestrator,
    logger,
    userMaxActiveChats: config.userMaxActiveChats,
  });
  const sse = createSseStreaming(config, { clock, logger });
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
        cache: () => responseCache?.status() ?? disabledCacheStatus(),
      }),
      toolSystemRouter({ tools }),
      healthRouter({ scheduler, store, tools, runs, queueMax: config.llm.queueMax }),
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
  if (config.redisUrl) {
    logger.warn(
      'REDIS_URL is set: the LLM response cache is shared, but shared limits are not implemented yet: ' +
        'each instance enforces LLM_MAX_* on its own, so with N instances set each to quota / N',
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
      scheduler.close();
      tools.close();
      runs.clear();
      await responseCache?.close();
      await provider.close?.();
      await store.close();
      logger.info('shut down cleanly');
    })());

  return { url, port, server, config, provider, store, scheduler, tools, runs, llm, responseCache, close };
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

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config';
import { ChatService } from './agents/chat-service';
import { Orchestrator } from './agents/orchestrator';
import { createApp } from './app';
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
import { connectSharedState } from './redis/shared-state';
import { duplicateForSubscribing } from './redis/redis-connection';
import { LocalRunEventLog, type RunEventLog } from './streaming/run-event-log';
import { RedisRunEventLog } from './streaming/redis/redis-run-event-log';
import { RemoteAttendance } from './streaming/redis/remote-attendance';
import { RedisToolCache } from './tools/redis-tool-cache';
import { sharedToolLimits } from './tools/create-shared-tool-limits';
import { LruToolCache } from './tools/tool-cache';
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
  /** This process's id among the instances sharing a Redis (REDIS_URL); `local` without one. */
  instanceId: string;
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
  const scheduler = createLlmScheduler({ config, provider, clock, logger, metrics });
  // With REDIS_URL: run events, tool limits and the tool cache shared by every instance.
  const shared = await connectSharedState(config, { clock, logger });
  const offlineSearch = new OfflineSearch();
  const tools = createToolSystem(config, {
    clock,
    logger,
    offlineSearch,
    ...(shared && {
      cache: new RedisToolCache({
        client: shared.client,
        keyPrefix: shared.keyPrefix,
        fallback: new LruToolCache({ clock }),
        logger,
      }),
      createRateLimiter: sharedToolLimits({
        client: shared.client,
        keyPrefix: shared.keyPrefix,
        logger,
        instanceCount: () => shared.presence.instanceCount(),
      }),
    }),
  });
  const eventLog: RunEventLog = shared
    ? new RedisRunEventLog({
        client: shared.runLogClient,
        keyPrefix: shared.keyPrefix,
        instanceId: shared.instanceId,
        isAlive: (id) => shared.presence.isAlive(id),
        clock,
        logger,
        retentionMs: config.sse.runLogRetentionMs,
        maxEvents: config.sse.runLogMaxEvents,
      })
    : new LocalRunEventLog();
  const runs = new RunRegistry({
    clock,
    retentionMs: config.sse.runLogRetentionMs,
    maxEventsPerRun: config.sse.runLogMaxEvents,
    eventLog,
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
  const sse = createSseStreaming(config, { clock, logger, runHolds: scheduler });
  const remoteAttendance = shared
    ? new RemoteAttendance({
        subscriber: duplicateForSubscribing(shared.client),
        keyPrefix: shared.keyPrefix,
        instanceId: shared.instanceId,
        runs,
        attendance: sse.limiter,
        clock,
        logger,
      })
    : undefined;
  remoteAttendance
    ?.start()
    .catch((error: unknown) =>
      logger.warn({ err: error }, 'cross-instance attendance is not subscribed yet'),
    );
  metrics.observe({ scheduler, tools, sse: () => sse.status() });
  const app = createApp({
    config,
    logger,
    store,
    chat,
    runs,
    sse,
    eventLog,
    apiRouters: [
      queueRouter({ scheduler, config, chat }),
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
  logger.info({ url, provider: provider.name, instanceId: shared?.instanceId }, 'Troupe is listening');
  if (config.redisUrl) {
    logger.warn(
      'REDIS_URL is set: run events, search_web limits and the tool cache are shared, but the LLM limits are not yet: ' +
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
      await scheduler.close();
      tools.close();
      runs.clear();
      await remoteAttendance?.close();
      await eventLog.close();
      await shared?.close();
      await provider.close?.();
      await store.close();
      logger.info('shut down cleanly');
    })());

  const instanceId = shared?.instanceId ?? 'local';
  return { url, port, server, config, provider, store, scheduler, tools, runs, instanceId, close };
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

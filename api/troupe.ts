import nodeCluster from 'node:cluster';
import http from 'node:http';
import os from 'node:os';
import type { Config } from '../config';
import { ChatService } from './agents/chat-service';
import { createAlertSampler } from './alerts/alert-sampler';
import { createAlerts } from './alerts/create-alerts';
import { Orchestrator } from './agents/orchestrator';
import { createApp } from './app';
import { createGateway } from './gateway/create-gateway';
import { createHttpServer } from './http/create-http-server';
import { listen } from './http/listen';
import { createCluster, type Cluster, type CreateClusterOptions } from './cluster/create-cluster';
import { applyOperatorCommand, joinCluster, memberFigures, queueClusterView } from './cluster/join-cluster';
import { WorkerPeers, type PrimaryChannel } from './cluster/worker-peers';
import { systemClock, type Clock } from './clock';
import { createLogger, type Logger } from './logger';
import { ChatAdmission } from './llm/admission';
import { composeLlm } from './llm/compose-llm';
import { createAdmissionMeasures } from './llm/admission-measures';
import type { LlmControl } from './llm/llm-control';
import { RoutingGateway } from './llm/routing/routing-gateway';
import { CachingGateway } from './llm/cache/caching-gateway';
import { disabledCacheStatus } from './llm/cache/cache-stats';
import { schedulerCapacityProbe } from './llm/capacity-probe';
import type { LlmGateway } from './llm/llm-gateway';
import type { Provider } from './llm/provider';
import { createStore } from './store/create-store';
import { hasNedbFiles } from './store/nedb-import';
import { RetentionSweeper } from './store/retention-sweeper';
import type { Store } from './store/store';
import { RunRegistry } from './streaming/run-registry';
import { ProcessUsageSampler } from './metrics/process-usage';
import { connectSharedState } from './redis/shared-state';
import { duplicateForSubscribing } from './redis/redis-connection';
import { LocalRunEventLog, type RunEventLog } from './streaming/run-event-log';
import { RedisRunEventLog } from './streaming/redis/redis-run-event-log';
import { RemoteAttendance } from './streaming/redis/remote-attendance';
import { createDurableRuns } from './agents/create-durable-runs';
import { RedisToolCache } from './tools/redis-tool-cache';
import { sharedToolLimits } from './tools/create-shared-tool-limits';
import { LruToolCache } from './tools/tool-cache';
import { TroupeMetrics } from './metrics/troupe-metrics';
import { DashboardSnapshots } from './dashboard/dashboard-snapshot';
import { dashboardRouter } from './routes/dashboard';
import { healthRouter } from './routes/health';
import { metricsRouter } from './routes/metrics';
import { Pseudonyms } from './routes/pseudonyms';
import { queueRouter, queueStatusBody } from './routes/queue';
import { toolSystemRouter, toolSystemStatusBody } from './routes/tool-system';
import { webRouter } from './routes/web';
import { createSseStreaming } from './streaming/sse-streaming';
import { createToolSystem } from './tools/create-tool-system';
import { troupeShutdown } from './troupe-shutdown';
import { OfflineSearch } from './tools/plugins/search-backends/offline-search';
import type { ToolExecutor } from './tools/tool-executor';

export interface TroupeOverrides {
  clock?: Clock;
  logger?: Logger;
  /** The provider of the first endpoint (the single `default` one without LLM_ENDPOINTS_FILE). */
  provider?: Provider;
  /** Providers by endpoint name (LLM_ENDPOINTS_FILE), for tests that script each endpoint. */
  providers?: Record<string, Provider>;
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
  /** The first endpoint's provider (the only one without LLM_ENDPOINTS_FILE). */
  provider: Provider;
  store: Store;
  /** The LLM side: the routing gateway over one scheduler per endpoint (their sum in `status()`). */
  scheduler: LlmControl;
  /** The routing gateway itself: endpoints, routes, models (the /v1 gateway maps model names with it). */
  router: RoutingGateway;
  tools: ToolExecutor;
  runs: RunRegistry;
  /** The gateway agents call: the response cache in front of the scheduler, or the scheduler itself. */
  llm: LlmGateway;
  /** The response cache; absent with LLM_CACHE=off. */
  responseCache?: CachingGateway;
  /** This process's id among the instances sharing a Redis (REDIS_URL); `local` without one. */
  instanceId: string;
  /**
   * Drains: readiness fails and new chats are refused, running chats may finish for
   * SHUTDOWN_GRACE_MS, the rest end with `shutting_down`; then the store is flushed. Idempotent.
   */
  close(): Promise<void>;
  /** Ends a drain's grace period now (a second SIGTERM/SIGINT): running chats end with `shutting_down`. */
  endGrace(): void;
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
  if (!config.mongo.uri && !overrides.store && hasNedbFiles(config.dataDir)) {
    logger.warn(
      { dataDir: config.dataDir },
      'DATA_DIR holds NeDB files of the previous embedded store; stop the server and run `npm run migrate-store` to import them',
    );
  }
  const retention = new RetentionSweeper({ store, ttlDays: config.conversationTtlDays, logger });
  const metrics = new TroupeMetrics();
  // What admission reads; in a cluster shared through cluster.admissionNews (built below: the
  // measures tell and ask only once chats run).
  const { meter, ledger } = createAdmissionMeasures({
    clock,
    chatTimeoutMs: config.llm.chatTimeoutMs,
    news: () => cluster?.admissionNews,
  });
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
        onDispatchRoundTrip: (ms) => metrics.redisDispatch(ms),
        onClusterStarts: (endpoint, starts) =>
          ledger.clusterStarted(endpoint, starts.redisAt, starts.count, starts.waiting),
        onServedElsewhere: (served) => meter.servedElsewhere(served),
      })
    : undefined;
  const { endpoints, router, scheduler, provider, room, responseCache, llm } = await composeLlm({
    config,
    clock,
    logger,
    metrics,
    cluster,
    overrides,
    ledger,
  });
  // With REDIS_URL: run events, tool limits and the tool cache shared by every instance.
  const shared = await connectSharedState(config, { clock, logger, cluster });
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
        tokenBatchMs: config.sse.tokenBatchMs,
        // Fenced off (another instance adopted the run): stop running it here.
        onFenced: (runId) => runs.get(runId)?.handOver(),
      })
    : new LocalRunEventLog();
  const runs = new RunRegistry({
    clock,
    retentionMs: config.sse.runLogRetentionMs,
    maxEventsPerRun: config.sse.runLogMaxEvents,
    eventLog,
  });
  // Durable chats: streamed runs checkpointed at each agent step, handed over on a drain, adopted
  // when their instance is gone (docs/DURABLE-CHATS.md).
  const durable = createDurableRuns(config, { shared, clock, logger });
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
    pause: scheduler,
    runs,
    orchestrator,
    clock,
    logger,
    userMaxActiveChats: config.userMaxActiveChats,
    chatTimeoutMs: config.llm.chatTimeoutMs,
    durable,
  });
  wakeDispatch = () => scheduler.wake();
  const admission = new ChatAdmission({
    maxRunning: config.sse.maxConcurrent,
    chatTimeoutMs: config.llm.chatTimeoutMs,
    enabled: config.llm.admission,
    room,
    meter,
    ledger,
    refusingNewChats: () => scheduler.isRefusingNewChats,
    metrics,
  });
  const sse = createSseStreaming(config, { clock, logger, runHolds: scheduler, admission });
  /** Set when shutdown begins: readiness answers 503 from then on. */
  const lifecycle = { draining: false };
  const usage = new ProcessUsageSampler();
  // Redis counts as up while the shared limits are in use (the fail-safe is not on its local share).
  const redisUp = cluster ? () => cluster.limiter.mode !== 'degraded' : undefined;
  metrics.observe({
    scheduler,
    tools,
    sse: () => sse.status(),
    runs,
    redisUp,
    waitTargetMs: config.alerts.waitP95TargetMs,
    ...(cluster ? { leases: () => cluster.leases() } : {}),
  });
  // How operators tell instances apart (dashboard, alerts, the cluster's registry).
  const instanceId = cluster?.instanceId ?? `${os.hostname()}:${process.pid}`;
  // `--workers N` without REDIS_URL: the primary relays the workers' figures and operator commands.
  const workerPeers =
    !cluster && nodeCluster.isWorker && process.send
      ? new WorkerPeers({
          channel: process as PrimaryChannel,
          clock,
          instanceId,
          host: os.hostname(),
          apply: (command) => applyOperatorCommand({ scheduler, chat, line: sse.limiter, logger }, command),
        })
      : undefined;
  workerPeers?.start(() => memberFigures(scheduler, 'local'));
  // GET /api/queue/status and the dashboard's snapshot answer from the same parts.
  const clusterView = queueClusterView(cluster, workerPeers);
  const queueStatusSources = {
    scheduler,
    cache: () => responseCache?.status() ?? disabledCacheStatus(),
    ...(clusterView ? { cluster: clusterView } : {}),
  };
  const dashboard = dashboardRouter({
    snapshots: new DashboardSnapshots({
      queueStatus: () => queueStatusBody(queueStatusSources),
      sseStatus: () => sse.status(),
      toolSystemStatus: () => toolSystemStatusBody(tools),
      self: { id: instanceId, pid: process.pid, host: os.hostname() },
      queueMax: config.llm.queueMax,
    }),
    clock,
  });
  const alerts = createAlerts(config.alerts, {
    clock,
    logger,
    instance: instanceId,
    createSample: () =>
      createAlertSampler({ scheduler, tools, runs, redisUp, line: () => sse.limiter.stats() }),
  });
  alerts?.start();
  // Operator commands from the other instances reach this one's scheduler and chat line.
  if (cluster) await joinCluster(cluster, { scheduler, chat, line: sse.limiter, logger });
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
  const app = createApp({
    config,
    logger,
    store,
    chat,
    runs,
    sse,
    eventLog,
    apiRouters: [
      queueRouter({
        ...queueStatusSources,
        config,
        chat,
        line: sse.limiter,
        pseudonyms: new Pseudonyms(),
      }),
      toolSystemRouter({ tools }),
      dashboard.router,
      healthRouter({
        scheduler,
        store,
        tools,
        runs,
        usage,
        queueMax: config.llm.queueMax,
        isDraining: () => lifecycle.draining,
        ...(cluster ? { redis: cluster.limiter } : {}),
      }),
    ],
    rootRouters: [metricsRouter({ metrics }), webRouter()],
    ownBodyRouters: [createGateway({ config, logger, clock, llm, chat, sse, scheduler, provider, router })],
  });

  // Runs left unfinished by an instance that is gone (or by this one's last run) are taken before
  // the first request, then looked for every RUN_ADOPT_INTERVAL_MS.
  await durable?.startAdopting((claimed) => {
    chat
      .resume(claimed)
      .catch((error: unknown) =>
        logger.error({ err: error, runId: claimed.checkpoint.runId }, 'an adopted run failed to start'),
      );
  });
  const server = createHttpServer(app, {
    bodyTimeoutMs: config.http.bodyTimeoutMs,
    logger,
    requestPrototype: app.request,
  });
  const { port, url } = await listen(server, config.port, config.host);
  logger.info({ url, provider: provider.name }, 'Troupe is listening');
  if (cluster) {
    logger.info(
      { instanceId: cluster.instanceId, instances: cluster.registry.count(), limiter: cluster.limiter.mode },
      'Sharing the LLM quota with the other instances through Redis',
    );
  }
  retention.start();
  if (overrides.warmUp ?? true) {
    // Indexing the search corpus takes ~0.4 s of CPU: done now, in chunks that let the first
    // requests through, not during the first user's chat. If it fails (no corpus), the server runs
    // on and the next offline search tries to index again.
    const startedAt = Date.now();
    offlineSearch.load().then(
      (documents) => logger.info({ documents, ms: Date.now() - startedAt }, 'search index ready'),
      (error: unknown) =>
        logger.warn({ err: error }, 'search index not built; the next offline search tries again'),
    );
  }

  const { close, endGrace } = troupeShutdown({
    logger,
    graceMs: config.http.shutdownGraceMs,
    lifecycle,
    server,
    runs,
    sse,
    dashboard,
    alerts,
    scheduler,
    cluster,
    tools,
    responseCache,
    remoteAttendance,
    eventLog,
    durable,
    shared,
    provider: {
      close: async () => void (await Promise.all(endpoints.map((endpoint) => endpoint.provider.close?.()))),
    },
    retention,
    store,
  });

  return {
    url,
    port,
    server,
    config,
    provider,
    store,
    scheduler,
    router,
    tools,
    runs,
    instanceId,
    llm,
    responseCache,
    close: async () => {
      workerPeers?.close();
      await close();
    },
    endGrace,
  };
}

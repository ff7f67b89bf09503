import type http from 'node:http';
import type { AlertEvaluator } from './alerts/alert-evaluator';
import type { Cluster } from './cluster/create-cluster';
import { AppError } from './errors';
import type { Logger } from './logger';
import type { CachingGateway } from './llm/cache/caching-gateway';
import type { LlmScheduler } from './llm/llm-scheduler';
import type { Provider } from './llm/provider';
import type { SharedState } from './redis/shared-state';
import type { RetentionSweeper } from './store/retention-sweeper';
import type { Store } from './store/store';
import type { RemoteAttendance } from './streaming/redis/remote-attendance';
import type { DurableRuns } from './agents/durable-runs';
import type { RunEventLog } from './streaming/run-event-log';
import type { RunRegistry } from './streaming/run-registry';
import type { SseStreaming } from './streaming/sse-streaming';
import type { ToolExecutor } from './tools/tool-executor';

/** What the drain stops, as the composition root built it (optional parts: absent in that mode). */
export interface TroupeShutdownParts {
  logger: Logger;
  /** How long running chats may finish after a drain begins: SHUTDOWN_GRACE_MS. */
  graceMs: number;
  /** Readiness reads `draining`: set the moment the drain begins. */
  lifecycle: { draining: boolean };
  server: http.Server;
  runs: RunRegistry;
  sse: SseStreaming;
  dashboard: { close(): void };
  alerts?: Pick<AlertEvaluator, 'stop'>;
  scheduler: Pick<LlmScheduler, 'close'>;
  cluster?: Pick<Cluster, 'close'>;
  tools: Pick<ToolExecutor, 'close'>;
  responseCache?: Pick<CachingGateway, 'close'>;
  remoteAttendance?: Pick<RemoteAttendance, 'close'>;
  eventLog: Pick<RunEventLog, 'close'>;
  /** Durable chats: runs are handed over to other instances instead of ending with shutting_down. */
  durable?: Pick<DurableRuns, 'drain' | 'handOverRemaining'>;
  shared?: Pick<SharedState, 'close'>;
  provider: Pick<Provider, 'close'>;
  retention: Pick<RetentionSweeper, 'stop'>;
  store: Pick<Store, 'close'>;
}

/** Troupe's `close` and `endGrace` (see the Troupe interface in troupe.ts). */
export interface TroupeShutdown {
  close(): Promise<void>;
  endGrace(): void;
}

/**
 * The drain, apart from the composition that built what it stops: readiness fails and new chats
 * are refused at once, running chats get SHUTDOWN_GRACE_MS to finish (or until endGrace), the rest
 * end with shutting_down; then every part is stopped, the store last. close() is idempotent.
 */
export function troupeShutdown(parts: TroupeShutdownParts): TroupeShutdown {
  const { logger, server, runs, sse } = parts;
  let closing: Promise<void> | undefined;
  let endGrace = () => {};
  const graceEnded = new Promise<void>((resolve) => (endGrace = resolve));
  const close = () =>
    (closing ??= (async () => {
      // Readiness fails and new chats are refused at once (the load balancer stops sending), while
      // running chats get up to SHUTDOWN_GRACE_MS to finish; whatever is left ends with shutting_down.
      parts.lifecycle.draining = true;
      sse.limiter.close();
      // Durable chats: nothing more is adopted here; runs go to other instances at their next step.
      await parts.durable?.drain();
      const { graceMs } = parts;
      const running = runs.active();
      logger.info(
        { running: running.length, graceMs },
        'shutting down: readiness fails, running chats may finish',
      );
      if (running.length > 0) {
        await withTimeout(
          Promise.race([Promise.all(running.map((run) => run.finished)), graceEnded]),
          graceMs,
        );
      }
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Handed over rather than failed: another instance (or this one restarted) continues them.
      const handedOver = (await parts.durable?.handOverRemaining()) ?? 0;
      if (handedOver > 0) logger.info({ handedOver }, 'grace period over: unfinished chats handed over');
      const rest = runs.active();
      if (rest.length > 0)
        logger.info({ cancelled: rest.length }, 'grace period over: ending the remaining chats');
      for (const run of rest) run.cancel(new AppError('shutting_down'));
      await withTimeout(Promise.all(rest.map((run) => run.finished)), 5000);
      sse.close();
      parts.dashboard.close();
      // Give the final `error` events a moment to flush, then drop idle keep-alive sockets.
      await new Promise((resolve) => setImmediate(resolve));
      server.closeIdleConnections();
      await withTimeout(serverClosed, 2000);
      server.closeAllConnections();
      parts.alerts?.stop();
      await parts.scheduler.close();
      await parts.cluster?.close();
      parts.tools.close();
      runs.clear();
      await parts.responseCache?.close();
      await parts.remoteAttendance?.close();
      await parts.eventLog.close();
      await parts.shared?.close();
      await parts.provider.close?.();
      await parts.retention.stop();
      await parts.store.close();
      logger.info('shut down cleanly');
    })());
  return { close, endGrace: () => endGrace() };
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

import cluster, { type Worker } from 'node:cluster';
import type { InstanceFigures } from './instance-registry';
import { isWorkerMessage } from './worker-peers';

export interface ClusterPrimaryOptions {
  workers: number;
  /** After a signal, workers still running this long are killed (each drains within its own bound first). */
  shutdownTimeoutMs: number;
  /** One line for the operator (the primary has no logger of its own: it runs no Troupe). */
  log: (line: string) => void;
  /** First restart delay of a worker that died, ms; doubles while workers keep dying young (default 1000). */
  restartDelayMs?: number;
}

/** A worker that dies sooner than this after its start counts as a crash loop: its restarts back off. */
const YOUNG_DEATH_MS = 10_000;
const MAX_RESTART_DELAY_MS = 30_000;

/**
 * The node:cluster primary of `npm start -- --workers N`: forks N workers, each a full Troupe on
 * the same port (cluster hands connections round-robin), restarts a worker that dies, and on
 * SIGTERM / SIGINT forwards SIGTERM to every worker and resolves once they have all drained
 * and exited (or were killed past shutdownTimeoutMs). Resolves with the exit code to use.
 */
export function runClusterPrimary(options: ClusterPrimaryOptions): Promise<number> {
  const restartBase = options.restartDelayMs ?? 1000;
  const startedAt = new Map<Worker, number>();
  let restartDelay = restartBase;
  let stopping = false;

  const fork = () => {
    const worker = cluster.fork();
    startedAt.set(worker, Date.now());
  };

  // Each worker's last figures, relayed to every worker (worker-peers.ts): what operators see and
  // command stays one view whichever worker answers, with or without Redis.
  const figures = new Map<Worker, InstanceFigures>();
  const sendAll = (message: unknown, except?: Worker) => {
    for (const worker of Object.values(cluster.workers ?? {})) {
      if (!worker || worker === except || !worker.isConnected()) continue;
      // A worker that is exiting may close its channel between the check and the send.
      worker.send(message as object, undefined, () => undefined);
    }
  };
  const relayFigures = () => sendAll({ troupe: 'worker-instances', instances: [...figures.values()] });

  return new Promise((resolve) => {
    cluster.on('message', (worker, message: unknown) => {
      if (!isWorkerMessage(message)) return;
      if (message.troupe === 'worker-figures') {
        figures.set(worker, message.figures);
        relayFigures();
      } else if (message.troupe === 'worker-command') {
        sendAll(message, worker);
      }
    });
    cluster.on('online', (worker) => options.log(`worker ${worker.process.pid} online`));
    cluster.on('exit', (worker, code, signal) => {
      const lived = Date.now() - (startedAt.get(worker) ?? Date.now());
      startedAt.delete(worker);
      if (figures.delete(worker)) relayFigures();
      if (stopping) {
        if (Object.keys(cluster.workers ?? {}).length === 0) resolve(0);
        return;
      }
      restartDelay = lived < YOUNG_DEATH_MS ? Math.min(restartDelay * 2, MAX_RESTART_DELAY_MS) : restartBase;
      const delay = lived < YOUNG_DEATH_MS ? restartDelay : restartBase;
      options.log(
        `worker ${worker.process.pid} died (${signal ?? `code ${code}`}) after ${Math.round(lived / 1000)} s; ` +
          `starting another in ${Math.round(delay / 1000)} s`,
      );
      setTimeout(() => {
        if (!stopping) fork();
      }, delay).unref();
    });

    const stop = (received: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      const workers = Object.values(cluster.workers ?? {}).filter((worker): worker is Worker => !!worker);
      options.log(`${received}: draining ${workers.length} workers`);
      if (workers.length === 0) resolve(0);
      for (const worker of workers) worker.process.kill('SIGTERM');
      setTimeout(() => {
        for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGKILL');
        options.log(`workers still running after ${options.shutdownTimeoutMs} ms were killed`);
        resolve(1);
      }, options.shutdownTimeoutMs).unref();
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));

    options.log(`starting ${options.workers} workers (node:cluster, round-robin on one port)`);
    for (let index = 0; index < options.workers; index++) fork();
  });
}

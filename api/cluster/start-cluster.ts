import cluster from 'node:cluster';
import type { Config } from '../../config';
import { parseWorkers } from '../../config/cli-args';
import { runClusterPrimary } from './cluster-primary';

/** Above a worker's own drain (runs' end, then the HTTP server and the store close). */
const SHUTDOWN_TIMEOUT_MS = 60_000;

/**
 * Runs this process as the cluster primary when `--workers N` (N > 1) asks for it, and returns
 * true; returns false in a worker or a single process, which then start Troupe themselves.
 */
export function startClusterIfAsked(config: Config, argv: readonly string[]): boolean {
  const workers = parseWorkers(argv);
  if (workers <= 1 || !cluster.isPrimary) return false;
  const log = (line: string) => process.stdout.write(`[cluster] ${line}\n`);
  if (!config.redisUrl) {
    process.stderr.write(
      `[cluster] warning: ${workers} workers without REDIS_URL: each enforces the limits alone (LLM_MAX_*, ` +
        'SEARCH_MAX_*), so together they can send up to ' +
        `${workers}× the quota, and a run resumes only on the worker that runs it. Set REDIS_URL, ` +
        'or divide the limits by the worker count.\n',
    );
  }
  void runClusterPrimary({ workers, shutdownTimeoutMs: SHUTDOWN_TIMEOUT_MS, log }).then((code) =>
    process.exit(code),
  );
  return true;
}

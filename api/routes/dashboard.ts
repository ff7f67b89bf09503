import { Router } from 'express';
import type { Clock, TimerHandle } from '../clock';
import type { DashboardSnapshots } from '../dashboard/dashboard-snapshot';
import { AppError } from '../errors';

/** Snapshots pushed per second to each open dashboard. */
const SNAPSHOT_INTERVAL_MS = 1000;
/**
 * Dashboards open at once. Operators open a handful; the bound keeps a forgotten wall of tabs (or
 * a script) from costing a snapshot per viewer per second without limit.
 */
export const MAX_DASHBOARD_VIEWERS = 20;

/**
 * GET /api/dashboard/snapshot — one DashboardSnapshot as JSON.
 * GET /api/dashboard/events — an SSE stream (`event: snapshot`) of one snapshot per second, for
 * `/dashboard`'s EventSource; it stops when the viewer leaves or the server shuts down.
 */
export function dashboardRouter(deps: { snapshots: DashboardSnapshots; clock: Clock }): {
  router: Router;
  /** Ends the open streams (shutdown: server.close() would wait for them). */
  close(): void;
} {
  const router = Router();
  const viewers = new Set<() => void>();

  router.get('/dashboard/snapshot', (_req, res) => {
    res.json(deps.snapshots.take());
  });

  router.get('/dashboard/events', (req, res) => {
    if (viewers.size >= MAX_DASHBOARD_VIEWERS) {
      throw new AppError('overloaded', `At most ${MAX_DASHBOARD_VIEWERS} dashboards may be open at once`, {
        retryAfterMs: 10_000,
      });
    }
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-cache, no-transform');
    res.setHeader('X-Accel-Buffering', 'no');
    res.flushHeaders();
    let timer: TimerHandle | undefined;
    let waitingForDrain = false;
    const send = () => {
      // A slow viewer skips snapshots rather than buffering them: only the latest one matters.
      if (!waitingForDrain) {
        const ok = res.write(`event: snapshot\ndata: ${JSON.stringify(deps.snapshots.take())}\n\n`);
        if (!ok) {
          waitingForDrain = true;
          res.once('drain', () => (waitingForDrain = false));
        }
      }
      timer = deps.clock.setTimeout(send, SNAPSHOT_INTERVAL_MS);
    };
    const stop = () => {
      if (timer) deps.clock.clearTimeout(timer);
      viewers.delete(stop);
      res.end();
    };
    viewers.add(stop);
    req.on('close', stop);
    res.write(`retry: ${SNAPSHOT_INTERVAL_MS * 3}\n\n`);
    send();
  });

  return {
    router,
    close() {
      for (const stop of [...viewers]) stop();
    },
  };
}

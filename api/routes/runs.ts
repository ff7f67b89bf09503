import { Router } from 'express';
import { AppError } from '../errors';
import type { RunRegistry } from '../streaming/run-registry';
import type { SseStreaming } from '../streaming/sse-streaming';
import type { Config } from '../../config';
import { resolveUser } from './auth';
import { lastEventId, streamRunToResponse } from './stream-run';

/**
 * GET /api/runs/:runId/events — a run's events for EventSource clients: replay after
 * Last-Event-ID, then live until `done`/`error`. Following a run here keeps it alive: a run is
 * cancelled only when its last listener, on any route, has been gone for the resume grace period.
 */
export function runsRouter(deps: { runs: RunRegistry; sse: SseStreaming; config: Config }): Router {
  const router = Router();
  router.get('/runs/:runId/events', (req, res) => {
    const run = deps.runs.get(req.params.runId);
    const afterId = lastEventId(req);
    const reconnecting = req.get('last-event-id') !== undefined || req.query.lastEventId !== undefined;
    // With API_KEYS the run must be the caller's; without, its unguessable id is the capability
    // (EventSource clients cannot send X-User-Id).
    const owner =
      deps.config.apiKeys.size > 0
        ? resolveUser(req, deps.config, undefined, { allowQueryKey: true })
        : undefined;
    // An EventSource reconnects after every end (it always does after `done`): to a run that has
    // nothing more to send — finished and replayed, or expired — it gets 204, which makes it stop.
    // Without Last-Event-ID an unknown run is what it looks like: not found.
    if (!run && reconnecting) {
      res.status(204).end();
      return;
    }
    if (!run || (owner !== undefined && run.userId !== owner)) {
      throw new AppError('not_found', `Run ${req.params.runId} was not found (or has expired)`);
    }
    if (run.isFinished && afterId >= run.lastEventId) {
      res.status(204).end();
      return;
    }
    streamRunToResponse(req, res, run, {
      heartbeat: deps.sse.heartbeat,
      backpressure: deps.sse.backpressure,
      attendance: deps.sse.limiter,
      afterId,
      resume: true,
    });
  });
  return router;
}

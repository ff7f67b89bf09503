import { Router } from 'express';
import { AppError } from '../errors';
import type { RunRegistry } from '../streaming/run-registry';
import type { SseStreaming } from '../streaming/sse-streaming';
import { lastEventId, streamRunToResponse } from './stream-run';

/**
 * GET /api/runs/:runId/events — a run's events for EventSource clients: replay after
 * Last-Event-ID, then live until `done`/`error`. Following a run here keeps it alive: a run is
 * cancelled only when its last listener, on any route, has been gone for the resume grace period.
 */
export function runsRouter(deps: { runs: RunRegistry; sse: SseStreaming }): Router {
  const router = Router();
  router.get('/runs/:runId/events', (req, res) => {
    const run = deps.runs.get(req.params.runId);
    if (!run) throw new AppError('not_found', `Run ${req.params.runId} was not found (or has expired)`);
    streamRunToResponse(req, res, run, {
      heartbeat: deps.sse.heartbeat,
      attendance: deps.sse.limiter,
      afterId: lastEventId(req),
      resume: true,
    });
  });
  return router;
}

import { Router } from 'express';
import type { SseStreaming } from '../streaming/sse-streaming';

/**
 * GET /api/sse/status — SSE admission at a glance: `{active, max, waiting, totalServed,
 * averageWaitMs, currentEstimatedWaitMs, meanRunMs, resumes, cancellations, refused, openStreams}`.
 */
export function sseRouter(deps: { sse: SseStreaming }): Router {
  const router = Router();
  router.get('/sse/status', (_req, res) => {
    res.json(deps.sse.status());
  });
  return router;
}

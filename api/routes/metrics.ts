import { Router } from 'express';
import type { TroupeMetrics } from '../metrics/troupe-metrics';

/** GET /metrics — Prometheus text format. */
export function metricsRouter(deps: { metrics: TroupeMetrics }): Router {
  const router = Router();
  router.get('/metrics', async (_req, res) => {
    res.setHeader('Content-Type', deps.metrics.registry.contentType);
    res.send(await deps.metrics.registry.metrics());
  });
  return router;
}

import { Router } from 'express';
import type { ToolExecutor } from '../tools/tool-executor';

/** GET /api/tool-system/status — per-tool health, circuit and the brief's metrics. */
export function toolSystemRouter(deps: { tools: ToolExecutor }): Router {
  const router = Router();
  router.get('/tool-system/status', (_req, res) => {
    res.json({ timestamp: Date.now(), ...deps.tools.status() });
  });
  return router;
}

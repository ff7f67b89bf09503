import { Router } from 'express';
import type { ToolExecutor } from '../tools/tool-executor';
import type { ToolSystemStatus } from '../tools/tool-metrics';

/** GET /api/tool-system/status — per-tool health, circuit and the brief's metrics. */
export function toolSystemRouter(deps: { tools: ToolExecutor }): Router {
  const router = Router();
  router.get('/tool-system/status', (_req, res) => {
    res.json(toolSystemStatusBody(deps.tools));
  });
  return router;
}

/** GET /api/tool-system/status's body; the dashboard's snapshot embeds the same object. */
export function toolSystemStatusBody(
  tools: Pick<ToolExecutor, 'status'>,
): ToolSystemStatus & { timestamp: number } {
  return { timestamp: Date.now(), ...tools.status() };
}

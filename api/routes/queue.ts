import { Router } from 'express';
import type { Config } from '../../config';
import type { CacheStatus } from '../llm/cache/cache-stats';
import type { LlmScheduler } from '../llm/llm-scheduler';
import { requireAdmin } from './auth';

/**
 * The brief's queue monitoring and emergency controls: status and items for everyone watching;
 * pause, resume and clear only with ADMIN_TOKEN.
 */
export function queueRouter(deps: {
  scheduler: LlmScheduler;
  config: Config;
  /** The LLM response cache's figures, shown as `queue.cache`. */
  cache?: () => CacheStatus;
}): Router {
  const router = Router();
  const { scheduler } = deps;
  const admin = requireAdmin(deps.config);

  router.get('/queue/status', (_req, res) => {
    const queue = { ...scheduler.status(), ...(deps.cache ? { cache: deps.cache() } : {}) };
    res.json({ status: queue.paused ? 'paused' : 'running', timestamp: new Date().toISOString(), queue });
  });

  router.get('/queue/items', (_req, res) => {
    const items = scheduler.items();
    res.json({ timestamp: new Date().toISOString(), count: items.length, items });
  });

  router.post('/queue/pause', admin, (req, res) => {
    scheduler.pause();
    req.log?.warn('LLM queue paused by an operator');
    res.json({
      status: 'paused',
      timestamp: new Date().toISOString(),
      queueLength: scheduler.status().queueLength,
    });
  });

  router.post('/queue/resume', admin, (req, res) => {
    scheduler.resume();
    req.log?.warn('LLM queue resumed by an operator');
    res.json({
      status: 'running',
      timestamp: new Date().toISOString(),
      queueLength: scheduler.status().queueLength,
    });
  });

  router.delete('/queue/clear', admin, (req, res) => {
    const cleared = scheduler.clear();
    req.log?.warn({ cleared }, 'LLM queue cleared by an operator');
    res.json({
      status: scheduler.status().paused ? 'paused' : 'running',
      timestamp: new Date().toISOString(),
      cleared,
    });
  });

  return router;
}

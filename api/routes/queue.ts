import { Router } from 'express';
import type { Config } from '../../config';
import type { ChatService } from '../agents/chat-service';
import type { CacheStatus } from '../llm/cache/cache-stats';
import type { LlmScheduler } from '../llm/llm-scheduler';
import type { QueueItem } from '../llm/request-queue';
import { isAdmin, requireAdmin } from './auth';
import type { Pseudonyms } from './pseudonyms';

/**
 * The brief's queue monitoring and emergency controls: status and items for everyone watching;
 * pause, resume and clear only with ADMIN_TOKEN.
 */
export function queueRouter(deps: {
  scheduler: LlmScheduler;
  config: Config;
  chat: Pick<ChatService, 'announcePause'>;
  pseudonyms: Pseudonyms;
  /** The LLM response cache's figures, shown as `queue.cache`. */
  cache?: () => CacheStatus;
}): Router {
  const router = Router();
  const { scheduler } = deps;
  const admin = requireAdmin(deps.config);

  router.get('/queue/status', (_req, res) => {
    const queue = { ...scheduler.status(), ...(deps.cache ? { cache: deps.cache() } : {}) };
    // Epoch ms, as the brief's example: `watch … | jq` scripts subtract timestamps.
    res.json({ status: queue.paused ? 'paused' : 'running', timestamp: Date.now(), queue });
  });

  // The run id is the capability to read a chat, and user and conversation ids are personal: only
  // the operator (ADMIN_TOKEN) sees them; everyone else sees pseudonyms and no run id.
  router.get('/queue/items', (req, res) => {
    const admin = isAdmin(req, deps.config);
    const items = scheduler.items();
    res.json({
      timestamp: new Date().toISOString(),
      count: items.length,
      redacted: !admin,
      items: admin ? items : items.map((item) => publicItem(item, deps.pseudonyms)),
    });
  });

  // Pause holds work: nothing dispatches, chats keep arriving into the bounded queue and continue on
  // resume. Refusing new chats meanwhile is a separate choice: {"refuseNewChats": true} (or ?refuse=1).
  router.post('/queue/pause', admin, (req, res) => {
    const body = (req.body ?? {}) as { refuseNewChats?: unknown };
    const refuseNewChats =
      body.refuseNewChats === true || req.query.refuse === '1' || req.query.refuse === 'true';
    scheduler.pause({ refuseNewChats });
    deps.chat.announcePause();
    req.log?.warn({ refuseNewChats }, 'LLM queue paused by an operator');
    res.json({
      status: 'paused',
      refuseNewChats,
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

function publicItem(item: QueueItem, pseudonyms: Pseudonyms): Omit<QueueItem, 'runId'> {
  return {
    id: item.id,
    agentType: item.agentType,
    userId: pseudonyms.of('user', item.userId),
    conversationId: pseudonyms.of('conversation', item.conversationId),
    state: item.state,
    waitedMs: item.waitedMs,
  };
}

import { Router } from 'express';
import { AppError } from '../errors';
import type { Config } from '../../config';
import type { Store } from '../store/store';
import { resolveUser } from './auth';

/**
 * GET /api/conversations/:id — the conversation and all its messages, agent work included, for its
 * owner only (the same user resolution as POST /api/chat); anyone else is told it does not exist.
 */
export function conversationsRouter(deps: { store: Store; config: Config }): Router {
  const router = Router();
  router.get('/conversations/:id', async (req, res) => {
    const userId = resolveUser(req, deps.config);
    const conversation = await deps.store.getConversation(req.params.id);
    if (!conversation || conversation.userId !== userId) {
      throw new AppError('not_found', `Conversation ${req.params.id} was not found`);
    }
    const messages = await deps.store.listMessages(conversation.id);
    res.json({
      id: conversation.id,
      userId: conversation.userId,
      createdAt: conversation.createdAt,
      messages: messages.map((message) => ({
        id: message.id,
        role: message.role,
        ...(message.agent ? { agent: message.agent } : {}),
        content: message.content,
        // A thinking model's reasoning, apart from the answer (present only when the model thought).
        ...(message.reasoning ? { reasoning: message.reasoning } : {}),
        createdAt: message.createdAt,
        ...(message.usage ? { usage: message.usage } : {}),
        ...(message.timings ? { timings: message.timings } : {}),
      })),
    });
  });
  return router;
}

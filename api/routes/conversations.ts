import { Router } from 'express';
import { AppError } from '../errors';
import type { Store } from '../store/store';

/** GET /api/conversations/:id — the conversation and all its messages, agent work included. */
export function conversationsRouter(deps: { store: Store }): Router {
  const router = Router();
  router.get('/conversations/:id', async (req, res) => {
    const conversation = await deps.store.getConversation(req.params.id);
    if (!conversation) throw new AppError('not_found', `Conversation ${req.params.id} was not found`);
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
        createdAt: message.createdAt,
        ...(message.usage ? { usage: message.usage } : {}),
        ...(message.timings ? { timings: message.timings } : {}),
      })),
    });
  });
  return router;
}

import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import type { ChatService } from '../agents/chat-service';
import { AppError } from '../errors';
import type { Logger } from '../logger';
import type { Run } from '../streaming/run';
import type { SseStreaming } from '../streaming/sse-streaming';
import { lastEventId, streamRunToResponse } from './stream-run';
import { resolveUser } from './auth';
import { requestLog } from './request-context';
import { parseOrThrow } from './validation';
import type { Config } from '../../config';

export const MAX_MESSAGE_CHARS = 8000;

const chatBody = z.object(
  {
    message: z
      .string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string') })
      // Whitespace, NUL and other control or invisible format characters alone are no question.
      .refine((text) => /[^\s\p{C}]/u.test(text), 'must contain visible text')
      .refine((text) => text.length <= MAX_MESSAGE_CHARS, `must be at most ${MAX_MESSAGE_CHARS} characters`),
    mode: z
      .enum(['multi_agent', 'single'], { error: 'must be "multi_agent" or "single"' })
      .default('multi_agent'),
    conversationId: z
      .string({ error: 'must be a string' })
      .regex(/^[\w-]{1,128}$/, 'must be 1–128 letters, digits, "-" or "_"')
      .optional(),
    userId: z
      .string({ error: 'must be a string' })
      .regex(/^[\w.@-]{1,128}$/, 'must be 1–128 letters, digits, ".", "@", "-" or "_"')
      .optional(),
  },
  { error: 'must be a JSON object' },
);

/**
 * POST /api/chat — one chat turn, streamed as SSE by default or answered as one JSON object.
 * Every chat passes SSE admission: it is served at once, waits in line (a stream is told `queued`),
 * or is refused with 503 before anything starts. A waiting client that dropped comes back with the
 * same request plus `X-Queue-Token`, and resumes the same run in its place.
 */
export function chatRouter(deps: {
  chat: ChatService;
  config: Config;
  sse: SseStreaming;
  logger: Logger;
}): Router {
  const router = Router();
  const { limiter, heartbeat, backpressure, tokenBatching, waitingReads } = deps.sse;
  router.post('/chat', async (req: Request, res: Response) => {
    const body = parseOrThrow(chatBody, req.body ?? undefined);
    const userId = resolveUser(req, deps.config, body.userId);
    const wantsJson = req.accepts(['text/event-stream', 'application/json']) === 'application/json';
    const token = req.get('x-queue-token');
    const resumed = token && !wantsJson ? limiter.findByToken(token.trim(), userId) : undefined;
    if (resumed) {
      requestLog(req, 'info')?.info({ runId: resumed.id }, 'chat resumed with its queue token');
      streamRunToResponse(req, res, resumed, {
        heartbeat,
        backpressure,
        tokenBatching,
        attendance: limiter,
        afterId: lastEventId(req),
        resume: true,
        waitingReads,
      });
      return;
    }
    // An unknown or expired token is a new chat at the end of the line (its `run` event says so).
    limiter.assertRoom();
    const { run, start, deadline } = await deps.chat.open({
      userId,
      message: body.message,
      mode: body.mode,
      conversationId: body.conversationId,
      // A JSON client reads only the final answer and cannot follow the run (it never learns its id).
      ...(wantsJson ? { streamDeltas: false } : {}),
    });
    // debug, not info: one line per chat is the access log's job (request-context), not a second one here.
    requestLog(req, 'debug')?.debug(
      { runId: run.id, conversationId: run.conversationId, mode: body.mode },
      'chat opened',
    );
    try {
      limiter.admit(run, start, deadline);
    } catch (error) {
      // The line filled up while the chat was being opened: refuse it as if it had been full before.
      run.cancel(error instanceof AppError ? error : undefined);
      throw error;
    }
    if (wantsJson) {
      // A JSON client has no token and nothing to resume: hanging up cancels its run at once.
      if (req.socket.destroyed) run.cancel();
      res.on('close', () => {
        if (!res.writableEnded) run.cancel();
      });
      await respondWithJson(res, run);
      return;
    }
    streamRunToResponse(req, res, run, {
      heartbeat,
      backpressure,
      tokenBatching,
      attendance: limiter,
      waitingReads,
    });
  });
  return router;
}

async function respondWithJson(res: Response, run: Run): Promise<void> {
  const last = await run.finished;
  if (res.writableEnded || res.destroyed) return;
  if (last.event === 'error') {
    const error = new AppError(last.data.code, last.data.message, { retryAfterMs: last.data.retryAfterMs });
    throw error;
  }
  if (last.event !== 'done') throw new AppError('internal');
  // Not res.json: it hashes every body for an ETag, and the answer to a POST is never revalidated.
  res.type('application/json').end(
    JSON.stringify({
      conversationId: last.data.conversationId,
      messageId: last.data.messageId,
      answer: last.data.answer,
      agents: run.agents,
      usage: last.data.usage,
      timings: last.data.timings,
    }),
  );
}

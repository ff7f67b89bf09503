import type { Request, Response } from 'express';
import type { ChatService } from '../agents/chat-service';
import { AppError, toAppError } from '../errors';
import type { HeartbeatTicker } from '../streaming/heartbeat-ticker';
import type { Run } from '../streaming/run';
import type { RunEvent } from '../streaming/run-events';
import type { SseLimiter } from '../streaming/sse-limiter';
import type { Caller } from './caller';
import { CompletionStream, completionObject, newIdentity } from './completion-chunks';
import { toChatMessages, type CompletionBody } from './completion-request';
import { sendOpenAIError } from './openai-errors';

/** The model name that runs Troupe's agents instead of one provider call. */
export const TROUPE_MODEL = 'troupe';

/** The longest user request the agents take, as on /api/chat; earlier turns are trimmed to fit. */
const MAX_MESSAGE_CHARS = 8000;

export interface TroupeCompletionDeps {
  chat: ChatService;
  /** The chat line: the same admission as /api/chat (start, wait in line, or refuse). */
  line: SseLimiter;
  heartbeat: HeartbeatTicker;
}

/**
 * `model: "troupe"`: the request's conversation becomes one multi-agent chat (Host → Planner →
 * Critic → Reporter) admitted like any /api/chat chat, and the Reporter's answer is the completion.
 *
 * Streamed, the Reporter's deltas are the completion's `content`; every other event of the run
 * (run, queued, agent_start, the other agents' deltas, tool_call, tool_result, agent_end) travels
 * in a chunk with empty `choices` and a `troupe: {event, data}` field, which OpenAI clients ignore.
 * Not streamed, the answer carries `troupe: {conversationId, agents}`.
 */
export async function serveTroupeCompletion(
  req: Request,
  res: Response,
  body: CompletionBody,
  caller: Caller,
  deps: TroupeCompletionDeps,
): Promise<void> {
  const message = chatMessage(body);
  deps.line.assertRoom();
  const streamed = body.stream === true;
  const { run, start, deadline } = await deps.chat.open({
    userId: caller.name,
    message,
    mode: 'multi_agent',
    ...(streamed ? {} : { streamDeltas: false }),
  });
  try {
    deps.line.admit(run, start, deadline);
  } catch (error) {
    run.cancel(error instanceof AppError ? error : undefined);
    throw error;
  }
  // The client cannot come back to this run (it has no token): hanging up cancels it at once.
  deps.line.attach(run);
  const onClose = () => {
    if (res.writableEnded) return;
    deps.line.detach(run);
    run.cancel();
  };
  res.on('close', onClose);
  if (req.socket.destroyed) onClose();
  const identity = newIdentity(TROUPE_MODEL);
  try {
    if (streamed) await streamRun(res, run, identity, body.stream_options?.include_usage === true, deps);
    else await answerRun(res, run, identity);
  } finally {
    res.off('close', onClose);
    deps.line.detach(run);
  }
}

async function streamRun(
  res: Response,
  run: Run,
  identity: ReturnType<typeof newIdentity>,
  includeUsage: boolean,
  deps: TroupeCompletionDeps,
): Promise<void> {
  const stream = new CompletionStream(res, identity);
  stream.open();
  deps.heartbeat.add(stream);
  const unsubscribe = run.subscribe((record: RunEvent) => {
    switch (record.event) {
      case 'delta':
        if (record.data.agent === 'reporter') stream.content(record.data.text);
        else stream.extension({ event: record.event, data: record.data });
        return;
      case 'done':
        stream.extension({
          event: 'done',
          data: {
            conversationId: record.data.conversationId,
            messageId: record.data.messageId,
            timings: record.data.timings,
          },
        });
        stream.finish({ usage: record.data.usage, finishReason: 'stop' }, includeUsage);
        return;
      case 'error':
        stream.fail(
          new AppError(record.data.code, record.data.message, { retryAfterMs: record.data.retryAfterMs }),
        );
        return;
      default:
        stream.extension({ event: record.event, data: record.data });
    }
  });
  try {
    await run.finished;
  } finally {
    unsubscribe();
    deps.heartbeat.delete(stream);
  }
}

async function answerRun(res: Response, run: Run, identity: ReturnType<typeof newIdentity>): Promise<void> {
  const last = await run.finished;
  if (res.writableEnded || res.destroyed) return;
  if (last.event !== 'done') {
    const error =
      last.event === 'error'
        ? new AppError(last.data.code, last.data.message, { retryAfterMs: last.data.retryAfterMs })
        : toAppError(undefined);
    sendOpenAIError(res, error);
    return;
  }
  const answer = completionObject(
    identity,
    { text: last.data.answer, toolCalls: [], usage: last.data.usage, finishReason: 'stop' },
    { conversationId: last.data.conversationId, agents: run.agents },
  );
  res.type('application/json').end(JSON.stringify(answer));
}

/**
 * The chat's request: the last user message, after the earlier turns as a short transcript (the
 * agents see a conversation's history this way; system messages are Troupe's own).
 */
export function chatMessage(body: CompletionBody): string {
  const messages = toChatMessages(body);
  let lastUser = -1;
  messages.forEach((entry, index) => {
    if (entry.role === 'user') lastUser = index;
  });
  if (lastUser < 0 || !/[^\s\p{C}]/u.test(messages[lastUser].content)) {
    throw new AppError(
      'invalid_request',
      'messages: the troupe model needs a user message with visible text',
    );
  }
  const request = messages[lastUser].content;
  if (request.length > MAX_MESSAGE_CHARS) {
    throw new AppError(
      'invalid_request',
      `messages: the last user message must be at most ${MAX_MESSAGE_CHARS} characters`,
    );
  }
  const history = messages
    .slice(0, lastUser)
    .filter((entry) => (entry.role === 'user' || entry.role === 'assistant') && entry.content !== '')
    .map((entry) => `${entry.role === 'user' ? 'User' : 'Assistant'}: ${entry.content}`)
    .join('\n');
  if (history === '') return request;
  const room = MAX_MESSAGE_CHARS - request.length - 40;
  if (room <= 0) return request;
  const trimmed = history.length > room ? history.slice(history.length - room) : history;
  return `Earlier in this conversation:\n${trimmed}\n\n${request}`;
}

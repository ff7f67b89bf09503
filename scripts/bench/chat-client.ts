import http from 'node:http';
import type { MessageKind } from './chat-messages';
import { SseParser, type ServerSentEvent } from './sse-parser';

/**
 * One chat over real SSE, timed the way a user experiences it: POST /api/chat, then the event
 * stream until `done` or `error` (the README's HTTP API section). A 503 before any stream is an early refusal.
 */

export type ChatOutcome = 'completed' | 'refused' | 'failed' | 'timed_out' | 'released';

/** Everything the report needs from one chat; times are absolute epoch ms (comparable across processes). */
export interface ChatRecord {
  user: number;
  kind: MessageKind;
  sentAt: number;
  endedAt: number;
  outcome: ChatOutcome;
  /** HTTP status of the answer, when one came. */
  status?: number;
  /** The server's error code, or client_timeout, network, incomplete_stream, http_<status>. */
  code?: string;
  /** Retry-After of a refusal, ms (absent when the header was missing). */
  retryAfterMs?: number;
  /** Each agent turn's LLM queue wait (agent_end waitMs), by agent: does the priority order hold. */
  agentWaitMs?: Record<string, number[]>;
  /** A refusal's error message and estimated wait: why admission refused. */
  refusal?: { message?: string; estimatedWaitMs?: number };
  /** Response headers arrived after, ms (the refusal latency of a 503). */
  headersMs?: number;
  firstEventMs?: number;
  firstTokenMs?: number;
  completionMs?: number;
  /** First `queued` event: its estimatedWaitMs, and when it came (absolute). */
  queuedEstimateMs?: number;
  queuedAt?: number;
  /** `queued` events received (the first, then one per change of place and per refresh). */
  queuedEvents?: number;
  /** From the first `queued` event to the first `agent_start` (the SSE slot), ms. */
  slotWaitMs?: number;
  /** Provider calls that finished for this chat: agent_end events plus tool-call rounds. */
  calls: number;
  /** When each of those calls finished (absolute ms), for goodput over time. */
  callTimes: number[];
  /** Sums over agent_end: time in provider calls and time queued for them, ms. */
  processMs: number;
  llmWaitMs: number;
  conversationId?: string;
  /** The run's id and the last event id received (what a resume needs). */
  runId?: string;
  lastEventId?: string;
  /**
   * The stream broke and the chat went on elsewhere (cluster): `resumed` with Last-Event-ID on
   * another instance, or `resubmitted` as a new chat after its instance died mid-run.
   */
  failover?: 'resumed' | 'resubmitted';
}

export interface ChatTarget {
  /** Troupe's root URL. */
  url: URL;
  agent: http.Agent;
  /** The user's Bearer key, when the server has API keys (its key decides the user). */
  apiKey?: (spec: ChatSpec) => string;
}

export interface ChatSpec {
  user: number;
  userId: string;
  kind: MessageKind;
  message: string;
  conversationId?: string;
}

export interface ChatRunOptions {
  /** The client gives up after this long (outcome timed_out, code client_timeout). */
  timeoutMs: number;
  /** Aborting it ends a stream still open as `released` (sse-capacity's hold phase). */
  release?: AbortSignal;
  /** Called on each event, for live counters. */
  onEvent?: (event: string) => void;
}

/** Wall-clock ms with sub-ms precision, the same origin in every process. */
export const now = (): number => performance.timeOrigin + performance.now();

export function runChat(target: ChatTarget, spec: ChatSpec, options: ChatRunOptions): Promise<ChatRecord> {
  return attempt(target, spec, options, true);
}

/**
 * Follows a chat whose stream broke: GET /api/runs/:runId/events with Last-Event-ID, continuing the
 * same record (its times stay measured from the first request). Resolves with it, ended again.
 */
export function resumeChat(
  target: ChatTarget,
  spec: ChatSpec,
  record: ChatRecord,
  options: ChatRunOptions,
): Promise<ChatRecord> {
  return attempt(target, spec, options, false, record);
}

function attempt(
  target: ChatTarget,
  spec: ChatSpec,
  options: ChatRunOptions,
  mayRetry: boolean,
  continued?: ChatRecord,
): Promise<ChatRecord> {
  return new Promise((resolve) => {
    const record: ChatRecord = continued ?? {
      user: spec.user,
      kind: spec.kind,
      sentAt: now(),
      endedAt: 0,
      outcome: 'failed',
      calls: 0,
      callTimes: [],
      processMs: 0,
      llmWaitMs: 0,
    };
    if (continued) delete record.code;
    let settled = false;
    let gotResponse = false;
    let response: http.IncomingMessage | undefined;
    let previousEvent = '';
    const body = JSON.stringify({
      message: spec.message,
      mode: 'multi_agent',
      ...(spec.conversationId ? { conversationId: spec.conversationId } : {}),
    });

    const finish = (outcome: ChatOutcome, code?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.release?.removeEventListener('abort', onRelease);
      record.outcome = outcome;
      if (code !== undefined) record.code = code;
      record.endedAt = now();
      if ((outcome === 'completed' || outcome === 'refused') && response) {
        // The server ends the response right after: let it, so the keep-alive socket is reused
        // (thousands of users reconnecting would otherwise pile up sockets in TIME_WAIT).
        if (!response.complete) {
          const guard = setTimeout(() => request.destroy(), 5000);
          response.once('close', () => clearTimeout(guard));
        }
      } else {
        request.destroy();
      }
      resolve(record);
    };
    const onRelease = () => finish('released', 'released');
    const timer = setTimeout(
      () => finish('timed_out', 'client_timeout'),
      continued ? Math.max(1, record.sentAt + options.timeoutMs - now()) : options.timeoutMs,
    );

    const request = http.request(
      {
        protocol: target.url.protocol,
        hostname: target.url.hostname,
        port: target.url.port,
        path: continued ? `/api/runs/${encodeURIComponent(record.runId ?? '')}/events` : '/api/chat',
        method: continued ? 'GET' : 'POST',
        agent: target.agent,
        headers: continued
          ? {
              accept: 'text/event-stream',
              'x-user-id': spec.userId,
              'last-event-id': record.lastEventId ?? '0',
            }
          : {
              'content-type': 'application/json',
              'content-length': Buffer.byteLength(body),
              accept: 'text/event-stream',
              'x-user-id': spec.userId,
              ...(target.apiKey ? { authorization: `Bearer ${target.apiKey(spec)}` } : {}),
            },
      },
      (incoming) => {
        gotResponse = true;
        response = incoming;
        const status = incoming.statusCode ?? 0;
        record.status = status;
        record.headersMs = now() - record.sentAt;
        if (status !== 200) {
          const retryAfter = incoming.headers['retry-after'];
          if (typeof retryAfter === 'string' && /^\d+(\.\d+)?$/.test(retryAfter.trim()))
            record.retryAfterMs = Number(retryAfter) * 1000;
          let text = '';
          incoming.setEncoding('utf8');
          incoming.on('data', (piece: string) => {
            if (text.length < 4096) text += piece;
          });
          incoming.on('end', () => {
            const code = errorCode(text) ?? `http_${status}`;
            if (status === 503) record.refusal = errorBody(text);
            finish(status === 503 || status === 429 ? 'refused' : 'failed', code);
          });
          incoming.on('error', () => finish('failed', `http_${status}`));
          return;
        }
        const parser = new SseParser((event) => onEvent(event));
        incoming.setEncoding('utf8');
        incoming.on('data', (piece: string) => parser.feed(piece));
        incoming.on('end', () => finish('failed', 'incomplete_stream'));
        incoming.on('error', () => finish('failed', 'incomplete_stream'));
      },
    );

    function onEvent(event: ServerSentEvent): void {
      const at = now();
      if (record.firstEventMs === undefined) record.firstEventMs = at - record.sentAt;
      if (event.id !== undefined) record.lastEventId = event.id;
      options.onEvent?.(event.event);
      switch (event.event) {
        case 'delta':
          // Deltas are most of the traffic: only their first arrival matters, so they are not parsed.
          if (record.firstTokenMs === undefined) record.firstTokenMs = at - record.sentAt;
          break;
        case 'run': {
          const data = parse<{ conversationId?: string; runId?: string }>(event.data);
          record.conversationId = data?.conversationId;
          record.runId = data?.runId;
          break;
        }
        case 'queued':
          record.queuedEvents = (record.queuedEvents ?? 0) + 1;
          if (record.queuedAt === undefined) {
            record.queuedAt = at;
            record.queuedEstimateMs = parse<{ estimatedWaitMs?: number }>(event.data)?.estimatedWaitMs;
          }
          break;
        case 'agent_start':
          if (record.queuedAt !== undefined && record.slotWaitMs === undefined)
            record.slotWaitMs = at - record.queuedAt;
          break;
        case 'tool_call':
          // The tool calls of one round come together, after the one provider call that asked for them.
          if (previousEvent !== 'tool_call') {
            record.calls++;
            record.callTimes.push(at);
          }
          break;
        case 'agent_end': {
          const data = parse<{ agent?: string; processMs?: number; waitMs?: number }>(event.data);
          if (data?.agent && data.waitMs !== undefined)
            (record.agentWaitMs ??= {})[data.agent] = [
              ...(record.agentWaitMs[data.agent] ?? []),
              data.waitMs,
            ];
          record.calls++;
          record.callTimes.push(at);
          record.processMs += data?.processMs ?? 0;
          record.llmWaitMs += data?.waitMs ?? 0;
          break;
        }
        case 'done':
          record.completionMs = at - record.sentAt;
          finish('completed');
          break;
        case 'error': {
          const data = parse<{
            code?: string;
            message?: string;
            retryAfterMs?: number;
            estimatedWaitMs?: number;
          }>(event.data);
          const code = data?.code ?? 'internal';
          // Refused while it waited in the line, before it started (no agent ran): admission's
          // refusal, as a 503 is before the stream — not an admitted chat that failed.
          if (code === 'overloaded' && record.calls === 0 && record.slotWaitMs === undefined) {
            record.refusal = { message: data?.message, estimatedWaitMs: data?.estimatedWaitMs };
            record.retryAfterMs = data?.retryAfterMs;
            finish('refused', code);
            break;
          }
          finish(code === 'queue_timeout' || code === 'llm_timeout' ? 'timed_out' : 'failed', code);
          break;
        }
      }
      previousEvent = event.event;
    }

    request.on('error', (error: NodeJS.ErrnoException) => {
      if (settled) return;
      // A keep-alive socket the server closed just as we reused it: nothing was sent, try once more.
      if (mayRetry && !gotResponse && request.reusedSocket && error.code === 'ECONNRESET') {
        settled = true;
        clearTimeout(timer);
        options.release?.removeEventListener('abort', onRelease);
        resolve(attempt(target, spec, options, false));
        return;
      }
      finish('failed', gotResponse ? 'incomplete_stream' : 'network');
    });
    options.release?.addEventListener('abort', onRelease, { once: true });
    if (options.release?.aborted) {
      finish('released', 'released');
      return;
    }
    request.end(continued ? undefined : body);
  });
}

function parse<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

function errorCode(text: string): string | undefined {
  return parse<{ error?: { code?: string } }>(text)?.error?.code;
}

function errorBody(text: string): ChatRecord['refusal'] {
  const error = parse<{ error?: { message?: string; estimatedWaitMs?: number } }>(text)?.error;
  return error ? { message: error.message, estimatedWaitMs: error.estimatedWaitMs } : undefined;
}

import http from 'node:http';
import { SseParser, type ServerSentEvent } from './sse-parser';

/** One chat of the `deploy` benchmark, as a client that reconnects would see it. */
export interface DurableChatRecord {
  outcome: 'done' | 'error' | 'failed';
  /** The error event's code, or why the client gave up. */
  code?: string;
  /** 503s (shutting_down, overloaded) that reached the client before the chat started. */
  refusals: number;
  /** Times the stream dropped or ended without a terminal event and the client reconnected. */
  reconnects: number;
  /** When each reconnect began (epoch ms). */
  reconnectedAt: number[];
  /** `agent_start` seen again for an agent whose turn was open: a step shown again from scratch. */
  restartedAgents: number;
  /** The event ids the client read were not 1, 2, 3 … without a gap or a repeat. */
  idsBroken: boolean;
  sentAt: number;
  endedAt: number;
}

const MAX_REFUSALS = 5;
const MAX_RECONNECTS = 40;

/**
 * POST /api/chat through the balancer, then follow the stream; when it drops or ends without
 * `done`/`error`, reconnect with Last-Event-ID (GET /api/runs/:id/events) after a short pause,
 * as docs/DURABLE-CHATS.md tells a client to.
 */
export async function runDurableChat(
  baseUrl: string,
  message: string,
  userId: string,
): Promise<DurableChatRecord> {
  const record: DurableChatRecord = {
    outcome: 'failed',
    refusals: 0,
    reconnects: 0,
    reconnectedAt: [],
    restartedAgents: 0,
    idsBroken: false,
    sentAt: Date.now(),
    endedAt: 0,
  };
  const ids: number[] = [];
  const open = new Set<string>();
  let runId: string | undefined;
  let terminal: ServerSentEvent | undefined;
  const onEvent = (event: ServerSentEvent) => {
    if (event.id) ids.push(Number(event.id));
    const data = JSON.parse(event.data);
    if (event.event === 'run') runId = data.runId;
    if (event.event === 'agent_start') {
      if (open.has(data.agent)) record.restartedAgents++;
      open.add(data.agent);
    }
    if (event.event === 'agent_end') open.delete(data.agent);
    if (event.event === 'done' || event.event === 'error') terminal = event;
  };
  for (;;) {
    const answer = await request(`${baseUrl}/api/chat`, 'POST', { message, userId }, {}, onEvent);
    if (answer.status === 503 && record.refusals < MAX_REFUSALS) {
      record.refusals++;
      await pause(Number(answer.retryAfter ?? 1) * 1000);
      continue;
    }
    if (answer.status !== 200) return finish(record, 'failed', `http_${answer.status}`);
    break;
  }
  while (!terminal && runId && record.reconnects < MAX_RECONNECTS) {
    record.reconnects++;
    record.reconnectedAt.push(Date.now());
    await pause(Math.min(250 * record.reconnects, 2000));
    const lastId = ids.at(-1);
    const answer = await request(
      `${baseUrl}/api/runs/${runId}/events`,
      'GET',
      undefined,
      lastId ? { 'Last-Event-ID': String(lastId) } : {},
      onEvent,
    );
    if (answer.status === 204) break;
  }
  record.idsBroken = ids.some((id, index) => id !== index + 1);
  if (!terminal) return finish(record, 'failed', runId ? 'no_terminal' : 'no_run');
  const data = JSON.parse(terminal.data);
  return finish(record, terminal.event === 'done' ? 'done' : 'error', data.code);
}

function finish(record: DurableChatRecord, outcome: DurableChatRecord['outcome'], code?: string) {
  record.outcome = outcome;
  if (code) record.code = code;
  record.endedAt = Date.now();
  return record;
}

/** One HTTP exchange; SSE bodies go to `onEvent` as they arrive. Network errors end it quietly. */
function request(
  url: string,
  method: string,
  body: unknown,
  headers: Record<string, string>,
  onEvent: (event: ServerSentEvent) => void,
): Promise<{ status: number; retryAfter?: string }> {
  return new Promise((resolve) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const outgoing = http.request(url, {
      method,
      headers: {
        Accept: 'text/event-stream',
        ...(payload ? { 'Content-Type': 'application/json' } : {}),
        ...headers,
      },
    });
    outgoing.setTimeout(120_000, () => outgoing.destroy());
    outgoing.on('error', () => resolve({ status: 0 }));
    outgoing.on('response', (response) => {
      const status = response.statusCode ?? 0;
      const retryAfter = response.headers['retry-after'];
      const streaming = /^text\/event-stream/.test(response.headers['content-type'] ?? '');
      const parser = new SseParser(onEvent);
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        if (streaming) parser.feed(chunk);
      });
      const done = () => resolve({ status, ...(typeof retryAfter === 'string' ? { retryAfter } : {}) });
      response.on('end', done);
      response.on('error', done);
      response.on('close', done);
    });
    outgoing.end(payload);
  });
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

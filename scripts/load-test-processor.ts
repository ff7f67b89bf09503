/**
 * Artillery processor for load-test.yml: Artillery only sees an HTTP 200 for a stream, whether it
 * ended with `done` or with an `error` event, so this reads the buffered SSE body and counts how
 * each chat really ended (`done` or an `error` event with its code; README, HTTP API). Artillery's `http.response_time` is the time to the
 * response headers — for a stream, a few ms — so the time to the end of a completed chat is
 * reported as its own metric, `troupe.chat.completed_ms`. Artillery bundles this file itself
 * (esbuild), so it imports nothing.
 */

interface ArtilleryResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body?: unknown;
}

interface ArtilleryEvents {
  emit(type: 'counter' | 'histogram', name: string, value: number): void;
}

interface ArtilleryContext {
  vars: Record<string, unknown>;
}

const STARTED_AT = 'troupeChatStartedAt';

/** beforeRequest: when this virtual user's chat was sent (each user sends one chat). */
export function markChatStart(
  _request: unknown,
  context: ArtilleryContext,
  _events: unknown,
  next: () => void,
): void {
  context.vars[STARTED_AT] = Date.now();
  next();
}

/** The terminal event of an SSE body: `done`, `error` with its code, or nothing. */
export function terminalEvent(
  body: string,
): { event: 'done' } | { event: 'error'; code: string } | undefined {
  let last: { event: 'done' } | { event: 'error'; code: string } | undefined;
  for (const block of body.split(/\r?\n\r?\n/)) {
    const name = /^event: *(.+)$/m.exec(block)?.[1]?.trim();
    if (name === 'done') last = { event: 'done' };
    else if (name === 'error') {
      const data = /^data: *(.*)$/m.exec(block)?.[1] ?? '';
      let code = 'unknown';
      try {
        code = String((JSON.parse(data) as { code?: unknown }).code ?? 'unknown');
      } catch {
        // An unreadable error event still ends the stream as an error.
      }
      last = { event: 'error', code };
    }
  }
  return last;
}

export function countChatOutcome(
  _request: unknown,
  response: ArtilleryResponse,
  context: ArtilleryContext,
  events: ArtilleryEvents,
  next: () => void,
): void {
  // afterResponse runs once the body is read, i.e. when the stream has ended.
  const startedAt = context.vars?.[STARTED_AT];
  if (response.statusCode === 503) {
    events.emit('counter', 'troupe.chat.refused', 1);
    if (response.headers['retry-after'] !== undefined)
      events.emit('counter', 'troupe.chat.refused_with_retry_after', 1);
  } else if (response.statusCode === 200) {
    const ending = terminalEvent(
      typeof response.body === 'string' ? response.body : String(response.body ?? ''),
    );
    if (!ending) events.emit('counter', 'troupe.chat.incomplete', 1);
    else if (ending.event === 'done') {
      events.emit('counter', 'troupe.chat.completed', 1);
      if (typeof startedAt === 'number')
        events.emit('histogram', 'troupe.chat.completed_ms', Date.now() - startedAt);
    } else events.emit('counter', `troupe.chat.error.${ending.code}`, 1);
  }
  next();
}

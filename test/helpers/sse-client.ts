import http from 'node:http';

export interface SseEvent {
  id?: string;
  event: string;
  data: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export interface SseStream {
  status: number;
  headers: http.IncomingHttpHeaders;
  events: SseEvent[];
  comments: string[];
  /** Raw body when the response was not an event stream (e.g. a JSON error). */
  body: string;
  /** Resolves when the server ends the response. */
  ended: Promise<void>;
  /** Resolves with the first event matching `predicate` (already received or future). */
  waitFor(predicate: (event: SseEvent) => boolean, timeoutMs?: number): Promise<SseEvent>;
  /** Drops the connection, as a user closing the tab. */
  abort(): void;
}

/**
 * A real-socket SSE client for tests (supertest buffers whole responses). It parses `id:`,
 * `event:`, `data:` blocks and `:` comments as they arrive.
 */
export function openSse(
  url: string,
  options: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<SseStream> {
  return new Promise((resolve, reject) => {
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    const request = http.request(url, {
      method: options.method ?? (payload ? 'POST' : 'GET'),
      headers: {
        Accept: 'text/event-stream',
        ...(payload ? { 'Content-Type': 'application/json' } : {}),
        ...options.headers,
      },
    });
    request.on('error', reject);
    request.on('response', (response) => {
      const waiters: Array<{ predicate: (event: SseEvent) => boolean; resolve: (event: SseEvent) => void }> =
        [];
      let buffer = '';
      let endResolve!: () => void;
      const stream: SseStream = {
        status: response.statusCode ?? 0,
        headers: response.headers,
        events: [],
        comments: [],
        body: '',
        ended: new Promise<void>((done) => (endResolve = done)),
        waitFor(predicate, timeoutMs = 20_000) {
          const found = stream.events.find(predicate);
          if (found) return Promise.resolve(found);
          return new Promise((resolveEvent, rejectEvent) => {
            const timer = setTimeout(
              () =>
                rejectEvent(
                  new Error(
                    `no matching event within ${timeoutMs} ms; got ${stream.events.map((e) => e.event).join(',')}`,
                  ),
                ),
              timeoutMs,
            );
            waiters.push({
              predicate,
              resolve: (event) => {
                clearTimeout(timer);
                resolveEvent(event);
              },
            });
          });
        },
        abort() {
          request.destroy();
          response.destroy();
        },
      };
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        stream.body += chunk;
        buffer += chunk;
        let boundary: number;
        while ((boundary = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, boundary);
          buffer = buffer.slice(boundary + 2);
          const event: SseEvent = { event: 'message', data: undefined };
          let isEvent = false;
          const dataLines: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) stream.comments.push(line.slice(1).trim());
            else if (line.startsWith('id:')) event.id = line.slice(3).trim();
            else if (line.startsWith('event:')) {
              event.event = line.slice(6).trim();
              isEvent = true;
            } else if (line.startsWith('data:')) {
              dataLines.push(line.slice(5).trim());
              isEvent = true;
            }
          }
          if (!isEvent) continue;
          const text = dataLines.join('\n');
          try {
            event.data = JSON.parse(text);
          } catch {
            event.data = text;
          }
          stream.events.push(event);
          for (const waiter of [...waiters]) {
            if (waiter.predicate(event)) {
              waiters.splice(waiters.indexOf(waiter), 1);
              waiter.resolve(event);
            }
          }
        }
      });
      response.on('end', () => endResolve());
      response.on('close', () => endResolve());
      resolve(stream);
    });
    if (payload) request.write(payload);
    request.end();
  });
}

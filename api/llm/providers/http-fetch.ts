import http from 'node:http';
import https from 'node:https';
import type { IncomingMessage } from 'node:http';

/**
 * A `fetch` for the openai SDK on Node's own HTTP client with keep-alive agents. The global fetch
 * (undici) wraps every response body in a WHATWG ReadableStream; with the SDK's async-iterator
 * parsing on top, that was ~35 % of Troupe's CPU per call (cpu benchmark, docs/BENCHMARKS.md).
 * Here the body stays a Node stream (an async iterable of Buffers, which the SDK accepts), and
 * the response is the small subset of `Response` the SDK and our stream reader use.
 */

export interface HttpFetchOptions {
  /** Sockets kept open per host between calls (keep-alive); calls beyond it open new ones. */
  maxFreeSockets?: number;
}

/** What the SDK reads of a response: status, headers, and the body as text, JSON or a stream. */
export interface LeanResponse {
  readonly ok: boolean;
  readonly status: number;
  readonly statusText: string;
  readonly url: string;
  readonly headers: Headers;
  readonly body: IncomingMessage;
  readonly bodyUsed: boolean;
  text(): Promise<string>;
  json(): Promise<unknown>;
}

export interface HttpFetch {
  fetch: typeof fetch;
  /** Closes the idle keep-alive sockets (shutdown). */
  close(): void;
}

export function createHttpFetch(options: HttpFetchOptions = {}): HttpFetch {
  const agentOptions = {
    keepAlive: true,
    maxSockets: Infinity,
    maxFreeSockets: options.maxFreeSockets ?? 256,
    // The most recently used socket first: the pool stays as small as the concurrency needs.
    scheduling: 'lifo' as const,
  };
  const agents = { 'http:': new http.Agent(agentOptions), 'https:': new https.Agent(agentOptions) };

  const leanFetch = (input: string | URL | Request, init: RequestInit = {}): Promise<LeanResponse> => {
    const url =
      typeof input === 'string' ? new URL(input) : input instanceof URL ? input : new URL(input.url);
    const protocol = url.protocol as 'http:' | 'https:';
    const signal = init.signal ?? undefined;
    return new Promise<LeanResponse>((resolve, reject) => {
      if (signal?.aborted) return reject(abortError(signal));
      const client = protocol === 'https:' ? https : http;
      const body = typeof init.body === 'string' ? init.body : undefined;
      if (init.body != null && body === undefined) {
        return reject(new TypeError('http-fetch sends string bodies only (the SDK sends JSON text)'));
      }
      const headers = toHeaderRecord(init.headers);
      if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
      const request = client.request(url, { method: init.method ?? 'GET', headers, agent: agents[protocol] });
      const onAbort = () => request.destroy(abortError(signal!));
      signal?.addEventListener('abort', onAbort, { once: true });
      request.on('error', (error) => {
        signal?.removeEventListener('abort', onAbort);
        reject(error);
      });
      request.on('response', (message) => {
        // The abort now reaches the body: a reader of it sees the stream fail.
        message.on('close', () => signal?.removeEventListener('abort', onAbort));
        resolve(new HttpResponse(message, url.href));
      });
      // Tokens stream in small writes; Nagle's algorithm would hold our small requests back too.
      request.setNoDelay(true);
      request.end(body);
    });
  };

  return {
    fetch: leanFetch as unknown as typeof fetch,
    close: () => {
      agents['http:'].destroy();
      agents['https:'].destroy();
    },
  };
}

class HttpResponse implements LeanResponse {
  readonly ok: boolean;
  readonly status: number;
  readonly statusText: string;
  readonly headers: Headers;
  private used = false;

  constructor(
    readonly body: IncomingMessage,
    readonly url: string,
  ) {
    this.status = body.statusCode ?? 0;
    this.ok = this.status >= 200 && this.status < 300;
    this.statusText = body.statusMessage ?? '';
    this.headers = new MessageHeaders(body.headers) as unknown as Headers;
  }

  get bodyUsed(): boolean {
    return this.used;
  }

  /**
   * The whole body, read with plain stream events: an async iterator over a Node stream costs a
   * promise per chunk and an end-of-stream watcher (1 % of a one-call chat's CPU, cpu profile).
   */
  text(): Promise<string> {
    this.used = true;
    const body = this.body;
    return new Promise<string>((resolve, reject) => {
      const pieces: Buffer[] = [];
      let ended = false;
      body.on('data', (piece: Buffer) => pieces.push(piece));
      body.once('end', () => {
        ended = true;
        resolve(Buffer.concat(pieces).toString('utf8'));
      });
      body.once('error', reject);
      // Destroyed without an error (the socket went away): the body is incomplete.
      body.once('close', () => {
        if (!ended) reject(body.errored ?? new Error('The response body ended before it was complete'));
      });
    });
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }
}

/**
 * The response's headers as the read-only part of `Headers` that the SDK and our readers use (get,
 * has, iteration), over the object Node's parser already built (names lower-cased, repeated
 * headers joined). A WHATWG `Headers` copied every header through validation and sorted them when
 * the SDK iterated them: ~1 % of a one-call chat's CPU (perf profile, docs/BENCHMARKS.md).
 */
class MessageHeaders {
  constructor(private readonly received: IncomingMessage['headers']) {}

  get(name: string): string | null {
    const value = this.received[name.toLowerCase()];
    if (value === undefined) return null;
    return Array.isArray(value) ? value.join(', ') : value;
  }

  has(name: string): boolean {
    return this.received[name.toLowerCase()] !== undefined;
  }

  forEach(callback: (value: string, name: string, headers: MessageHeaders) => void): void {
    for (const [name, value] of this.entries()) callback(value, name, this);
  }

  *entries(): IterableIterator<[string, string]> {
    for (const name of Object.keys(this.received)) {
      const value = this.get(name);
      if (value !== null) yield [name, value];
    }
  }

  *keys(): IterableIterator<string> {
    for (const [name] of this.entries()) yield name;
  }

  *values(): IterableIterator<string> {
    for (const [, value] of this.entries()) yield value;
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }

  getSetCookie(): string[] {
    const value = this.received['set-cookie'];
    return value === undefined ? [] : Array.isArray(value) ? value : [value];
  }
}

function toHeaderRecord(headers: RequestInit['headers']): Record<string, string> {
  const record: Record<string, string> = {};
  if (!headers) return record;
  if (headers instanceof Headers || Array.isArray(headers)) {
    for (const [name, value] of headers) record[name] = value;
    return record;
  }
  for (const [name, value] of Object.entries(headers)) record[name.toLowerCase()] = String(value);
  return record;
}

/** The error fetch rejects with on abort: the SDK recognises it by its name. */
function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && reason.name === 'AbortError') return reason;
  return new DOMException('This operation was aborted', 'AbortError');
}

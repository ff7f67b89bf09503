import { APIError } from 'openai';

/**
 * Reads an OpenAI-compatible `text/event-stream` body and hands each chunk's JSON to `onChunk`,
 * synchronously as its event completes. It replaces the SDK's stream iterator, which awaits an
 * async generator step (and copies bytes through its line decoder) for every chunk: per token
 * that was the largest single cost of a streamed call (cpu benchmark, docs/BENCHMARKS.md).
 * Semantics follow the SDK's: `[DONE]` ends the data, a chunk carrying `error` (or an `error`
 * event) throws the APIError the SDK would have thrown, other events' data are passed on.
 */

type Body = AsyncIterable<Uint8Array | string> | ReadableStream<Uint8Array>;

export async function readChatStream(
  body: Body | null | undefined,
  headers: Headers,
  onChunk: (chunk: unknown) => void,
): Promise<void> {
  if (!body) throw new SyntaxError('The provider answered a stream request without a body');
  const parser = new EventStreamParser(headers, onChunk);
  const decoder = new TextDecoder();
  if (Symbol.asyncIterator in body) {
    for await (const piece of body as AsyncIterable<Uint8Array | string>) {
      // Read on past `[DONE]` to the end: leaving early would destroy the keep-alive socket.
      parser.feed(typeof piece === 'string' ? piece : decoder.decode(piece, { stream: true }));
    }
  } else {
    const reader = (body as ReadableStream<Uint8Array>).getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        parser.feed(decoder.decode(value, { stream: true }));
      }
    } finally {
      reader.releaseLock();
    }
  }
  parser.feed(decoder.decode());
  parser.end();
}

/** The WHATWG event-stream format, reduced to what chat streams use: `event:` and `data:` lines. */
export class EventStreamParser {
  /** `[DONE]` was seen: nothing after it is data. */
  done = false;
  private buffer = '';
  private event = '';
  private data = '';
  private hasData = false;

  constructor(
    private readonly headers: Headers | undefined,
    private readonly onChunk: (chunk: unknown) => void,
  ) {}

  feed(text: string): void {
    if (this.done || text === '') return;
    const buffer = this.buffer === '' ? text : this.buffer + text;
    let start = 0;
    for (;;) {
      const newline = buffer.indexOf('\n', start);
      if (newline < 0) break;
      const end = newline > start && buffer.charCodeAt(newline - 1) === 13 ? newline - 1 : newline;
      this.line(buffer.slice(start, end));
      start = newline + 1;
      if (this.done) {
        this.buffer = '';
        return;
      }
    }
    this.buffer = start === 0 ? buffer : buffer.slice(start);
  }

  /** The body ended: an event not closed by a blank line still counts (as the SDK's decoder does). */
  end(): void {
    if (this.buffer !== '') {
      const rest = this.buffer;
      this.buffer = '';
      this.line(rest.endsWith('\r') ? rest.slice(0, -1) : rest);
    }
    this.line('');
  }

  private line(line: string): void {
    if (line === '') {
      this.dispatch();
      return;
    }
    if (line.charCodeAt(0) === 58) return; // ':' — a comment
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === 'data') {
      this.data = this.hasData ? `${this.data}\n${value}` : value;
      this.hasData = true;
    } else if (field === 'event') {
      this.event = value;
    }
  }

  private dispatch(): void {
    if (!this.hasData) {
      this.event = '';
      return;
    }
    const data = this.data;
    const event = this.event;
    this.data = '';
    this.event = '';
    this.hasData = false;
    if (data.startsWith('[DONE]')) {
      this.done = true;
      return;
    }
    const parsed = JSON.parse(data) as { error?: object; message?: string } | null;
    if (event === 'error') throw new APIError(undefined, parsed?.error, parsed?.message, undefined);
    if (parsed && parsed.error) throw new APIError(undefined, parsed.error, undefined, this.headers);
    this.onChunk(parsed);
  }
}

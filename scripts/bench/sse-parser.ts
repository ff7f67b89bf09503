/**
 * An incremental Server-Sent Events parser (the WHATWG event-stream format): feed it the response
 * body in whatever pieces the socket delivers; it calls back once per complete event. Comment lines
 * (heartbeats) are counted, not dispatched. Pure: no I/O, no timers.
 */

export interface ServerSentEvent {
  event: string;
  data: string;
  id?: string;
}

export class SseParser {
  /** Comment lines seen (`: ping` heartbeats). */
  comments = 0;
  private buffer = '';
  private event = '';
  private data: string[] = [];
  private id: string | undefined;

  constructor(private readonly onEvent: (event: ServerSentEvent) => void) {}

  feed(chunk: string): void {
    this.buffer += chunk;
    let start = 0;
    for (;;) {
      const newline = this.findLineEnd(start);
      if (newline < 0) break;
      const line = this.buffer.slice(start, newline);
      // A CR LF pair is one line ending; a CR alone is one too.
      start = this.buffer[newline] === '\r' && this.buffer[newline + 1] === '\n' ? newline + 2 : newline + 1;
      this.line(line);
    }
    this.buffer = this.buffer.slice(start);
  }

  /** Index of the next CR or LF from `from`; -1 when the line is not complete yet (a trailing CR might precede an LF). */
  private findLineEnd(from: number): number {
    for (let index = from; index < this.buffer.length; index++) {
      const char = this.buffer.charCodeAt(index);
      if (char === 10) return index;
      if (char === 13) return index + 1 < this.buffer.length ? index : -1;
    }
    return -1;
  }

  private line(line: string): void {
    if (line === '') {
      this.dispatch();
      return;
    }
    if (line.startsWith(':')) {
      this.comments++;
      return;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
    else if (field === 'id') this.id = value;
  }

  private dispatch(): void {
    if (this.data.length > 0 || this.event !== '') {
      const event: ServerSentEvent = { event: this.event || 'message', data: this.data.join('\n') };
      if (this.id !== undefined) event.id = this.id;
      this.onEvent(event);
    }
    this.event = '';
    this.data = [];
  }
}

import type { Response } from 'express';
import type { HeartbeatTicker } from './heartbeat-ticker';
import type { RunEvent } from './run-events';

/**
 * Writes Server-Sent Events to one HTTP response: `id:`/`event:`/`data:` blocks, and a comment
 * line (`: ping`) on every tick of the shared heartbeat so proxies and load balancers keep an idle
 * stream open. It holds no buffer and no timer of its own: an idle stream costs its socket and little else.
 */
export class SseWriter {
  private closed = false;
  private corked = false;
  /**
   * Events written in the same tick (a provider read often carries several tokens) leave in one
   * socket write: one writev per delta was the largest cost of a multi-agent chat (cpu benchmark).
   */
  private readonly uncork = () => {
    this.corked = false;
    this.res.uncork();
  };

  constructor(
    private readonly res: Response,
    private readonly ticker: HeartbeatTicker,
  ) {
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-cache, no-transform');
    res.setHeader('Connection', 'keep-alive');
    // Nginx would otherwise buffer the stream and deliver it in lumps.
    res.setHeader('X-Accel-Buffering', 'no');
    res.flushHeaders();
    ticker.add(this);
    res.on('close', () => this.stop());
  }

  get isOpen(): boolean {
    return !this.closed && !this.res.writableEnded && !this.res.destroyed;
  }

  send(record: RunEvent): void {
    if (!this.isOpen) return;
    if (!this.corked) {
      this.corked = true;
      this.res.cork();
      process.nextTick(this.uncork);
    }
    this.res.write(`id: ${record.id}\nevent: ${record.event}\ndata: ${JSON.stringify(record.data)}\n\n`);
  }

  comment(text: string): void {
    if (this.isOpen) this.res.write(`: ${text}\n\n`);
  }

  heartbeat(): void {
    this.comment('ping');
  }

  end(): void {
    if (this.isOpen) this.res.end();
    this.stop();
  }

  private stop(): void {
    this.closed = true;
    this.ticker.delete(this);
  }
}

import type { Response } from 'express';
import type { Clock, TimerHandle } from '../clock';
import { AppError } from '../errors';
import type { Logger } from '../logger';
import type { HeartbeatTicker } from './heartbeat-ticker';
import type { RunEvent } from './run-events';

/**
 * How far one listener may fall behind (SSE_SLOW_READER_MS, SSE_MAX_BUFFERED_BYTES). `write()`
 * never blocks: what the socket cannot take yet waits in memory, so a reader that stops reading
 * would otherwise grow the process without bound.
 */
export interface SseBackpressure {
  clock: Clock;
  /** A socket not drained for this long has a reader too slow to serve. */
  slowReaderMs: number;
  /** More than this many bytes waiting for the socket ends the stream at once. */
  maxBufferedBytes: number;
  logger?: Logger;
}

/** After the slow_reader event is queued, how long the socket gets to flush it before it is destroyed. */
const FLUSH_GRACE_MS = 2000;

/**
 * Writes Server-Sent Events to one HTTP response: `id:`/`event:`/`data:` blocks, and a comment
 * line (`: ping`) on every tick of the shared heartbeat so proxies and load balancers keep an idle
 * stream open. It holds no buffer of its own, and respects the socket's backpressure: a reader that
 * stays behind past the bounds gets a `slow_reader` error and its stream ends (destroyed if even
 * that cannot be flushed). Only this listener is affected: the run goes on for the others.
 */
export class SseWriter {
  private closed = false;
  private slowTimer?: TimerHandle;

  constructor(
    private readonly res: Response,
    private readonly ticker: HeartbeatTicker,
    private readonly backpressure?: SseBackpressure,
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
    this.write(`id: ${record.id}\nevent: ${record.event}\ndata: ${JSON.stringify(record.data)}\n\n`);
  }

  comment(text: string): void {
    // A ping behind a backlog keeps nothing alive: the backlog itself is still being sent.
    if (this.isOpen && !this.res.writableNeedDrain) this.write(`: ${text}\n\n`);
  }

  heartbeat(): void {
    this.comment('ping');
  }

  end(): void {
    if (this.isOpen) this.res.end();
    this.stop();
  }

  private write(text: string): void {
    const drained = this.res.write(text);
    const limits = this.backpressure;
    if (!limits || drained) return;
    if (this.res.writableLength > limits.maxBufferedBytes) {
      this.endSlowReader(`more than ${limits.maxBufferedBytes} bytes waiting`);
      return;
    }
    if (this.slowTimer) return;
    this.slowTimer = limits.clock.setTimeout(() => {
      this.slowTimer = undefined;
      this.endSlowReader(`not drained for ${limits.slowReaderMs} ms`);
    }, limits.slowReaderMs);
    this.res.once('drain', () => this.clearSlowTimer());
  }

  private endSlowReader(reason: string): void {
    if (!this.isOpen || !this.backpressure) return;
    const { clock, logger } = this.backpressure;
    logger?.info(
      { reason, bufferedBytes: this.res.writableLength },
      'ending a stream whose reader is too slow',
    );
    const error = new AppError('slow_reader');
    // No id: the event is this listener's, not the run's, so a reconnect resumes after the last delivered one.
    this.res.end(`event: error\ndata: ${JSON.stringify(error.toBody().error)}\n\n`);
    this.stop();
    const res = this.res;
    clock.setTimeout(() => {
      if (!res.writableFinished) res.destroy();
    }, FLUSH_GRACE_MS);
  }

  private clearSlowTimer(): void {
    if (this.slowTimer && this.backpressure) this.backpressure.clock.clearTimeout(this.slowTimer);
    this.slowTimer = undefined;
  }

  private stop(): void {
    this.closed = true;
    this.clearSlowTimer();
    this.ticker.delete(this);
  }
}

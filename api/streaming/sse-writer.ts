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

/**
 * Tokens written together (SSE_TOKEN_BATCH_MS): a stream's first token of a quiet spell is written
 * at once, the ones that follow within the window leave in one write when it ends. Every token is
 * still its own event with its own id; only the system calls are shared. At a high call rate one
 * write per token per listener was among an instance's largest costs, and a starved event loop
 * holds the quota's slots longer than the calls need them.
 */
export interface SseTokenBatching {
  clock: Clock;
  /** 0 writes every token at once. */
  windowMs: number;
}

/**
 * Waiting tokens past this many characters are written at once: a fast stream is sent in pieces
 * the reader's socket drains as it goes, not in one lump that looks like a backlog to the bounds.
 */
const MAX_BATCH_CHARS = 16_384;

/** After the slow_reader event is queued, how long the socket gets to flush it before it is destroyed. */
const FLUSH_GRACE_MS = 2000;

/**
 * Writes Server-Sent Events to one HTTP response: `id:`/`event:`/`data:` blocks, and a comment
 * line (`: ping`) on every tick of the shared heartbeat so proxies and load balancers keep an idle
 * stream open. Beyond one batching window's tokens it holds no buffer of its own, and it respects
 * the socket's backpressure: a reader that stays behind past the bounds gets a `slow_reader` error
 * and its stream ends (destroyed if even that cannot be flushed). Only this listener is affected:
 * the run goes on for the others.
 */
export class SseWriter {
  private closed = false;
  private slowTimer?: TimerHandle;
  /** Tokens waiting for the end of the batching window, already formatted. */
  private batched = '';
  /** Set while a batching window is open (after a token was written at once). */
  private batchTimer?: TimerHandle;

  constructor(
    private readonly res: Response,
    private readonly ticker: HeartbeatTicker,
    private readonly backpressure?: SseBackpressure,
    private readonly batching?: SseTokenBatching,
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
    const text = `id: ${record.id}\nevent: ${record.event}\ndata: ${JSON.stringify(record.data)}\n\n`;
    if (record.event === 'delta' || record.event === 'reasoning') {
      this.sendToken(text);
      return;
    }
    // Anything else goes at once, after the tokens before it: the order on the wire is the run's.
    this.flushBatch();
    this.write(text);
  }

  comment(text: string): void {
    this.flushBatch();
    // A ping behind a backlog keeps nothing alive: the backlog itself is still being sent.
    if (this.isOpen && !this.res.writableNeedDrain) this.write(`: ${text}\n\n`);
  }

  heartbeat(): void {
    this.comment('ping');
  }

  end(): void {
    this.flushBatch();
    if (this.isOpen) this.res.end();
    this.stop();
  }

  private sendToken(text: string): void {
    const batching = this.batching;
    if (!batching || batching.windowMs <= 0) {
      this.write(text);
      return;
    }
    if (this.batchTimer) {
      this.batched += text;
      if (this.batched.length >= MAX_BATCH_CHARS) this.writeBatch();
      return;
    }
    this.write(text);
    this.openBatchWindow(batching);
  }

  private openBatchWindow(batching: SseTokenBatching): void {
    this.batchTimer = batching.clock.setTimeout(() => {
      this.batchTimer = undefined;
      if (this.batched === '') return;
      this.writeBatch();
      // Tokens are still coming: the next ones wait for the next window too.
      if (this.isOpen) this.openBatchWindow(batching);
    }, batching.windowMs);
  }

  /** Writes the waiting tokens now; the window stays open for those that follow. */
  private flushBatch(): void {
    if (this.batched !== '') this.writeBatch();
  }

  private writeBatch(): void {
    const text = this.batched;
    this.batched = '';
    if (this.isOpen) this.write(text);
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
    if (this.batchTimer && this.batching) this.batching.clock.clearTimeout(this.batchTimer);
    this.batchTimer = undefined;
    this.batched = '';
    this.ticker.delete(this);
  }
}

import { Writable } from 'node:stream';
import type { Response } from 'express';
import { ManualClock } from '../../api/clock';
import { HeartbeatTicker } from '../../api/streaming/heartbeat-ticker';
import { SseWriter } from '../../api/streaming/sse-writer';

/** A response whose socket takes bytes only when told to (a reader that stopped reading). */
function stalledResponse(highWaterMark = 64) {
  const pending: Array<() => void> = [];
  let received = '';
  const stream = new Writable({
    highWaterMark,
    write(chunk, _encoding, done) {
      pending.push(() => {
        received += chunk.toString();
        done();
      });
    },
  });
  const res = Object.assign(stream, {
    status: () => res,
    setHeader: () => res,
    flushHeaders: () => {},
  }) as unknown as Response & Writable;
  return {
    res,
    /** The reader catches up: every pending write completes. */
    drain() {
      while (pending.length > 0) pending.shift()!();
    },
    received: () => received,
  };
}

const event = (id: number, text = 'x'.repeat(40)) => ({
  id,
  event: 'delta' as const,
  data: { agent: 'host', text },
});

describe('SseWriter backpressure', () => {
  let clock: ManualClock;
  let ticker: HeartbeatTicker;

  beforeEach(() => {
    clock = new ManualClock();
    ticker = new HeartbeatTicker({ clock, intervalMs: 1000 });
  });

  test('a reader that does not drain within SSE_SLOW_READER_MS is ended with slow_reader, then destroyed', () => {
    const { res, received } = stalledResponse();
    const writer = new SseWriter(res, ticker, { clock, slowReaderMs: 500, maxBufferedBytes: 1_000_000 });
    writer.send(event(1) as never);
    writer.send(event(2) as never);
    expect(writer.isOpen).toBe(true);
    clock.advance(499);
    expect(writer.isOpen).toBe(true);
    clock.advance(1);
    expect(writer.isOpen).toBe(false);
    expect(res.writableEnded).toBe(true);
    expect(ticker.size).toBe(0);
    // The reader never caught up, so even the error cannot be flushed: the socket goes.
    clock.advance(2000);
    expect(res.destroyed).toBe(true);
    expect(received()).toBe('');
  });

  test('a reader that catches up in time keeps its stream, and later receives the slow_reader error if it stalls', async () => {
    const tick = () => new Promise((resolve) => setImmediate(resolve));
    const socket = stalledResponse();
    const writer = new SseWriter(socket.res, ticker, {
      clock,
      slowReaderMs: 500,
      maxBufferedBytes: 1_000_000,
    });
    writer.send(event(1) as never);
    writer.send(event(2) as never);
    clock.advance(400);
    socket.drain();
    await tick(); // 'drain' is emitted on the next tick
    clock.advance(400);
    expect(writer.isOpen).toBe(true);
    writer.send(event(3) as never);
    writer.send(event(4) as never);
    clock.advance(500);
    expect(writer.isOpen).toBe(false);
    socket.drain();
    await tick();
    expect(socket.received()).toContain('event: error\ndata: {"code":"slow_reader"');
    expect(socket.res.writableFinished).toBe(true);
  });

  test('more than SSE_MAX_BUFFERED_BYTES waiting ends the stream at once', () => {
    const { res } = stalledResponse();
    const writer = new SseWriter(res, ticker, { clock, slowReaderMs: 60_000, maxBufferedBytes: 1024 });
    let sent = 0;
    while (writer.isOpen && sent < 1000) writer.send(event(++sent) as never);
    expect(writer.isOpen).toBe(false);
    // Bounded: what waits is the bound plus one event and the error, not everything sent.
    expect(res.writableLength).toBeLessThan(1024 + 400);
    expect(sent).toBeLessThan(20);
  });

  test('heartbeats are skipped while the socket has a backlog', () => {
    const socket = stalledResponse(1);
    const writer = new SseWriter(socket.res, ticker, {
      clock,
      slowReaderMs: 60_000,
      maxBufferedBytes: 1_000_000,
    });
    writer.send(event(1) as never);
    const before = socket.res.writableLength;
    writer.heartbeat();
    expect(socket.res.writableLength).toBe(before);
    socket.drain();
    writer.heartbeat();
    socket.drain();
    expect(socket.received()).toContain(': ping');
  });
});

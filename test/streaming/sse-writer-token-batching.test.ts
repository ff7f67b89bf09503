import { Writable } from 'node:stream';
import type { Response } from 'express';
import { ManualClock } from '../../api/clock';
import { HeartbeatTicker } from '../../api/streaming/heartbeat-ticker';
import type { RunEvent } from '../../api/streaming/run-events';
import { SseWriter } from '../../api/streaming/sse-writer';

/** A response that takes every write at once and remembers each write call apart. */
function recordingResponse() {
  const writes: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      writes.push(chunk.toString());
      done();
    },
  });
  const res = Object.assign(stream, {
    status: () => res,
    setHeader: () => res,
    flushHeaders: () => {},
  }) as unknown as Response & Writable;
  return { res, writes };
}

const token = (id: number, text = `t${id}`): RunEvent => ({
  id,
  event: 'delta',
  data: { agent: 'host', text },
});
const thought = (id: number): RunEvent => ({
  id,
  event: 'reasoning',
  data: { agent: 'host', text: `r${id}` },
});
const agentStart = (id: number): RunEvent => ({ id, event: 'agent_start', data: { agent: 'planner' } });
/** The event ids in one write, in the order they were written. */
const ids = (write: string) => [...write.matchAll(/^id: (\d+)$/gm)].map((match) => Number(match[1]));

describe('SseWriter token batching (SSE_TOKEN_BATCH_MS)', () => {
  let clock: ManualClock;
  let ticker: HeartbeatTicker;

  beforeEach(() => {
    clock = new ManualClock();
    ticker = new HeartbeatTicker({ clock, intervalMs: 60_000 });
  });

  test('the first token goes at once; those within the window leave together when it ends, each its own event', () => {
    const { res, writes } = recordingResponse();
    const writer = new SseWriter(res, ticker, undefined, { clock, windowMs: 20 });
    const heartbeatOnly = clock.pendingTimers();
    writer.send(token(1));
    expect(writes.map(ids)).toEqual([[1]]);
    writer.send(token(2));
    writer.send(thought(3));
    clock.advance(19);
    expect(writes.map(ids)).toEqual([[1]]);
    clock.advance(1);
    expect(writes.map(ids)).toEqual([[1], [2, 3]]);
    expect(writes[1]).toBe(
      'id: 2\nevent: delta\ndata: {"agent":"host","text":"t2"}\n\n' +
        'id: 3\nevent: reasoning\ndata: {"agent":"host","text":"r3"}\n\n',
    );
    // Tokens still came: the next one waits for the next window too.
    writer.send(token(4));
    expect(writes).toHaveLength(2);
    clock.advance(20);
    expect(writes.map(ids)).toEqual([[1], [2, 3], [4]]);
    // A quiet window closes batching: the next token is again written at once.
    clock.advance(20);
    expect(clock.pendingTimers()).toBe(heartbeatOnly);
    writer.send(token(5));
    expect(writes.map(ids)).toEqual([[1], [2, 3], [4], [5]]);
  });

  test("any other event, a heartbeat and the end write the waiting tokens first: the order on the wire is the run's", () => {
    const { res, writes } = recordingResponse();
    const writer = new SseWriter(res, ticker, undefined, { clock, windowMs: 20 });
    writer.send(token(1));
    writer.send(token(2));
    writer.send(agentStart(3));
    expect(writes.map(ids)).toEqual([[1], [2], [3]]);
    writer.send(token(4));
    writer.heartbeat();
    expect(writes.slice(3)).toEqual([expect.stringContaining('id: 4\n'), ': ping\n\n']);
    writer.send(token(5));
    writer.end();
    expect(writes.slice(5).map(ids)).toEqual([[5]]);
    expect(res.writableEnded).toBe(true);
    // Nothing is left to fire after the end.
    expect(clock.pendingTimers()).toBe(0);
  });

  test('a window holding more than 16 KB of tokens writes them at once, in pieces the socket drains as it goes', () => {
    const { res, writes } = recordingResponse();
    const writer = new SseWriter(res, ticker, undefined, { clock, windowMs: 20 });
    const long = 'x'.repeat(6000);
    for (let id = 1; id <= 8; id++) writer.send(token(id, long));
    // The first at once; then a write each time the waiting tokens pass 16 KB (three of ~6 KB).
    expect(writes.map(ids)).toEqual([[1], [2, 3, 4], [5, 6, 7]]);
    clock.advance(20);
    expect(writes.map(ids)).toEqual([[1], [2, 3, 4], [5, 6, 7], [8]]);
  });

  test('a window of 0, or no batching at all, writes every token at once', () => {
    for (const batching of [{ clock, windowMs: 0 }, undefined]) {
      const { res, writes } = recordingResponse();
      const writer = new SseWriter(res, ticker, undefined, batching);
      const heartbeatOnly = clock.pendingTimers();
      writer.send(token(1));
      writer.send(token(2));
      writer.send(token(3));
      expect(writes.map(ids)).toEqual([[1], [2], [3]]);
      expect(clock.pendingTimers()).toBe(heartbeatOnly);
      writer.end();
    }
  });

  test('a listener that leaves drops its waiting tokens and its timer', () => {
    const { res, writes } = recordingResponse();
    const writer = new SseWriter(res, ticker, undefined, { clock, windowMs: 20 });
    writer.send(token(1));
    writer.send(token(2));
    res.destroy();
    res.emit('close');
    expect(writer.isOpen).toBe(false);
    expect(clock.pendingTimers()).toBe(0);
    clock.advance(100);
    expect(writes.map(ids)).toEqual([[1]]);
  });
});

import { ManualClock } from '../../api/clock';
import { HeartbeatTicker } from '../../api/streaming/heartbeat-ticker';
import type { RunEvent } from '../../api/streaming/run-events';
import {
  WaitingReads,
  type PausableSocket,
  type WaitingStreamTarget,
} from '../../api/streaming/waiting-reads';

/** A socket that only records whether it is reading. */
class FakeSocket implements PausableSocket {
  reading = true;
  destroyed = false;
  pause(): void {
    this.reading = false;
  }
  resume(): void {
    this.reading = true;
  }
}

/** A stream that records what it was sent, and when, and whether its socket was reading then. */
class FakeStream implements WaitingStreamTarget {
  readonly writes: Array<{ at: number; what: string; reading: boolean }> = [];
  constructor(
    readonly socket: FakeSocket,
    private readonly clock: ManualClock,
  ) {}
  send(record: RunEvent): void {
    const what = record.event === 'queued' ? `queued ${record.data.position}` : record.event;
    this.writes.push({ at: this.clock.now(), what, reading: this.socket.reading });
  }
  heartbeat(): void {
    this.writes.push({ at: this.clock.now(), what: 'ping', reading: this.socket.reading });
  }
}

let nextId = 1;
const place = (position: number): RunEvent => ({
  id: nextId++,
  event: 'queued',
  data: { position, estimatedWaitMs: 1000, token: 't' },
});

const sockets = (count: number) => Array.from({ length: count }, () => new FakeSocket());
const readingCount = (list: FakeSocket[]) => list.filter((socket) => socket.reading).length;

/** `count` waiting streams, each registered with a heartbeat ticker (1 s) and with the rotation that takes it over. */
function streamsWithHeartbeat(clock: ManualClock, options: { sliceSize: number; count: number }) {
  const ticker = new HeartbeatTicker({ clock, intervalMs: 1000 });
  const reads = new WaitingReads({ clock, sliceSize: options.sliceSize, periodMs: 10, heartbeat: ticker });
  const streams = sockets(options.count).map((socket) => new FakeStream(socket, clock));
  for (const stream of streams) {
    ticker.add(stream);
    reads.add(stream.socket, {}, stream);
  }
  return { reads, streams };
}

describe('WaitingReads: waiting streams read in turns once there are many', () => {
  test('with a slice or fewer waiting, every socket reads all the time and no timer runs', () => {
    const clock = new ManualClock();
    const reads = new WaitingReads({ clock, sliceSize: 3, periodMs: 10 });
    const list = sockets(3);
    for (const socket of list) reads.add(socket);
    expect(reads.rotating).toBe(false);
    expect(readingCount(list)).toBe(3);
    clock.advance(1000);
    expect(readingCount(list)).toBe(3);
  });

  test('past a slice, one slice reads per period, round the line; each socket reads once a round', () => {
    const clock = new ManualClock();
    const reads = new WaitingReads({ clock, sliceSize: 2, periodMs: 10 });
    const list = sockets(5);
    // The third stream starts the rotation: the first round is the three waiting then.
    for (const socket of list) reads.add(socket);
    expect(reads.rotating).toBe(true);
    expect(list.map((socket) => socket.reading)).toEqual([true, true, false, false, false]);
    clock.advance(10);
    expect(list.map((socket) => socket.reading)).toEqual([false, false, true, false, false]);
    // A new round: the line as it is now, the two that joined during the first one included.
    clock.advance(10);
    expect(list.map((socket) => socket.reading)).toEqual([true, true, false, false, false]);
    clock.advance(10);
    expect(list.map((socket) => socket.reading)).toEqual([false, false, true, true, false]);
    clock.advance(10);
    expect(list.map((socket) => socket.reading)).toEqual([false, false, false, false, true]);
  });

  test('a stream joining while the rotation runs starts paused and reads in the next round', () => {
    const clock = new ManualClock();
    const reads = new WaitingReads({ clock, sliceSize: 1, periodMs: 10 });
    const [first, second, late] = sockets(3);
    reads.add(first);
    reads.add(second);
    reads.add(late);
    expect(late.reading).toBe(false);
    clock.advance(10);
    expect([first.reading, second.reading, late.reading]).toEqual([false, true, false]);
    clock.advance(10);
    expect([first.reading, second.reading, late.reading]).toEqual([true, false, false]);
    clock.advance(10);
    expect([first.reading, second.reading, late.reading]).toEqual([false, true, false]);
    clock.advance(10);
    expect([first.reading, second.reading, late.reading]).toEqual([false, false, true]);
  });

  test('a stream that leaves the line reads again at once; back to a slice or fewer, every socket reads and the timer stops', () => {
    const clock = new ManualClock();
    const reads = new WaitingReads({ clock, sliceSize: 2, periodMs: 10 });
    const list = sockets(4);
    for (const socket of list) reads.add(socket);
    expect(list[3].reading).toBe(false);
    reads.delete(list[3]);
    expect(list[3].reading).toBe(true);
    expect(reads.rotating).toBe(true);
    reads.delete(list[2]);
    expect(reads.rotating).toBe(false);
    expect(readingCount(list)).toBe(4);
    clock.advance(100);
    expect(readingCount(list)).toBe(4);
  });

  test('a destroyed socket is not resumed, and close() lets every socket read', () => {
    const clock = new ManualClock();
    const reads = new WaitingReads({ clock, sliceSize: 1, periodMs: 10 });
    const list = sockets(3);
    for (const socket of list) reads.add(socket);
    list[2].destroyed = true;
    reads.delete(list[2]);
    expect(list[2].reading).toBe(false);
    reads.close();
    expect(readingCount(list)).toBe(2);
    expect(reads.rotating).toBe(false);
    reads.add(new FakeSocket());
    expect(reads.size).toBe(0);
  });

  test("readNow takes a run's streams out of the rotation and says whether one was paused", () => {
    const clock = new ManualClock();
    const reads = new WaitingReads({ clock, sliceSize: 1, periodMs: 10 });
    const [first, second, third] = sockets(3);
    const runs = [{}, {}, {}];
    reads.add(first, runs[0]);
    reads.add(second, runs[1]);
    reads.add(third, runs[2]);
    // The first reads in this turn, the others are paused.
    expect(reads.readNow(runs[0])).toBe(false);
    expect(reads.readNow(runs[2])).toBe(true);
    expect(third.reading).toBe(true);
    expect(reads.size).toBe(1);
    expect(reads.readNow({})).toBe(false);
  });

  test('while rotating, a place for a paused socket is held (the newest only) and written at the end of its read turn', () => {
    const clock = new ManualClock();
    const reads = new WaitingReads({ clock, sliceSize: 1, periodMs: 10 });
    const streams = sockets(3).map((socket) => new FakeStream(socket, clock));
    for (const stream of streams) reads.add(stream.socket, {}, stream);
    const [first, second, third] = streams;
    // The first reads in this turn: its news is the caller's to send.
    expect(reads.hold(first.socket, place(1))).toBe(false);
    expect(reads.hold(second.socket, place(5))).toBe(true);
    expect(reads.hold(second.socket, place(4))).toBe(true);
    expect(reads.hold(third.socket, place(6))).toBe(true);
    // The second reads from 10 ms on, and is written to as its turn ends, reading still.
    clock.advance(10);
    expect(second.writes).toEqual([]);
    clock.advance(10);
    expect(second.writes).toEqual([{ at: clock.now(), what: 'queued 4', reading: true }]);
    expect(second.socket.reading).toBe(false);
    // The third's client left during its turn: its socket was destroyed, nothing is written to it.
    third.socket.destroyed = true;
    clock.advance(10);
    expect(third.writes).toEqual([]);
    expect(first.writes).toEqual([]);
    // An unknown socket, or one whose stream left the line, is not held for.
    reads.delete(second.socket);
    expect(reads.hold(second.socket, place(3))).toBe(false);
    reads.close();
  });

  test('while rotating, the ticker skips the waiting streams and each is pinged in its read turn, never more than an interval apart', () => {
    const clock = new ManualClock();
    const { reads, streams } = streamsWithHeartbeat(clock, { sliceSize: 2, count: 20 });
    clock.advance(5000);
    for (const stream of streams) {
      const pings = stream.writes.filter((write) => write.what === 'ping');
      // Joined at 0; pinged at least every second (a round is 100 ms), not much more often.
      const times = [clock.now() - 5000, ...pings.map((ping) => ping.at), clock.now()];
      for (let index = 1; index < times.length; index++)
        expect(times[index] - times[index - 1]).toBeLessThanOrEqual(1000);
      expect(pings.length).toBeLessThanOrEqual(7);
      // Every ping went to a socket being read.
      expect(pings.every((ping) => ping.reading)).toBe(true);
    }
    reads.close();
  });

  test('when the rotation stops, the ticker takes its streams back; held places and overdue pings follow a period of reading', () => {
    const clock = new ManualClock();
    const { reads, streams } = streamsWithHeartbeat(clock, { sliceSize: 1, count: 2 });
    const [first, second] = streams;
    // The ticker ticks at 1000 ms, skipping both; the rotation pings them in their turns instead.
    clock.advance(1000);
    const before = second.writes.length;
    // 5 ms into the first's turn: the second is paused, and its new place is held.
    clock.advance(5);
    expect(first.socket.reading).toBe(true);
    expect(reads.hold(second.socket, place(1))).toBe(true);
    // The first's run starts: one stream waits, nothing rotates, the second reads again at once
    // but hears its place only a period later.
    reads.delete(first.socket);
    expect(reads.rotating).toBe(false);
    expect(second.socket.reading).toBe(true);
    expect(second.writes.length).toBe(before);
    clock.advance(10);
    // Its last ping (from the rotation, at ~960 ms) came before the ticker's tick at 1000 ms: the
    // next tick, at 2000 ms, would be more than an interval after it, so it is pinged now too.
    expect(second.writes.slice(before).map((write) => write.what)).toEqual(['queued 1', 'ping']);
    // From now on the ticker pings it.
    clock.advance(1000);
    expect(second.writes.at(-1)?.what).toBe('ping');
    reads.close();
  });
});

import { ManualClock } from '../../api/clock';
import { WaitingReads, type PausableSocket } from '../../api/streaming/waiting-reads';

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

const sockets = (count: number) => Array.from({ length: count }, () => new FakeSocket());
const readingCount = (list: FakeSocket[]) => list.filter((socket) => socket.reading).length;

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
});

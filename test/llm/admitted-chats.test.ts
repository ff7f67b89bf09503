import { ManualClock } from '../../api/clock';
import { AdmittedChats } from '../../api/llm/admitted-chats';

/** Admits `count` chats estimated at 1 s, each finishing after `actualMs`, one after another. */
function finish(chats: AdmittedChats, clock: ManualClock, count: number, actualMs: number): void {
  for (let index = 0; index < count; index++) {
    const admission = chats.admit(`run-${clock.now()}-${index}`, 1_000);
    chats.recordCall(`run-${clock.now()}-${index}`);
    clock.advance(actualMs);
    admission.release('completed');
  }
}

/** What finished chats teach admission: the measured slowdown, and how long it remembers. */
describe('AdmittedChats slowdown', () => {
  test('is 1 until enough chats finished, then the 90th percentile of actual / estimated', () => {
    const clock = new ManualClock();
    const chats = new AdmittedChats(clock, { minimumChats: 5 });
    finish(chats, clock, 4, 2_000);
    expect(chats.slowdown()).toBe(1);
    finish(chats, clock, 1, 2_000);
    expect(chats.slowdown()).toBe(2);
  });

  test('forgets a transient within half a minute instead of after a hundred chats', () => {
    const clock = new ManualClock();
    const chats = new AdmittedChats(clock, { minimumChats: 5 });
    // A cold start's first minute: chats ran 3x their estimate.
    finish(chats, clock, 30, 3_000);
    expect(chats.slowdown()).toBe(3);
    clock.advance(31_000);
    // Four ordinary chats since: too few to speak alone, so the newest ten (old ones among them) count…
    finish(chats, clock, 4, 1_000);
    expect(chats.slowdown()).toBe(3);
    // …until the last 30 s hold enough chats by themselves.
    finish(chats, clock, 1, 1_000);
    expect(chats.slowdown()).toBe(1);
  });
  test('forgets old ratios as time passes, with no chat finishing meanwhile', () => {
    const clock = new ManualClock(0);
    const chats = new AdmittedChats(clock, { minimumChats: 5 });
    finish(chats, clock, 5, 3_000);
    finish(chats, clock, 10, 1_000);
    // Asked (and remembered) while the slow chats are still in the window.
    expect(chats.slowdown()).toBe(3);
    expect(chats.slowdown()).toBe(3);
    // The slow ones finished 3–15 s in, the others 16–25 s: at 46 s only the others are recent.
    clock.advance(46_000 - clock.now());
    expect(chats.slowdown()).toBe(1);
    expect(chats.recentRatios()).toHaveLength(10);
  });
});

describe('slowdown over several instances (each finishes a share of the chats)', () => {
  test('takes the 90th percentile over this instance’s and the others’ published ratios', () => {
    const clock = new ManualClock();
    const chats = new AdmittedChats(clock, { minimumChats: 5 });
    // Alone, this instance has too few chats to say, but it shares them from the first one on.
    finish(chats, clock, 3, 3_000);
    expect(chats.slowdown()).toBe(1);
    expect(chats.recentRatios()).toEqual([3, 3, 3]);
    expect(chats.slowdown([1, 1])).toBe(3);
    finish(chats, clock, 7, 3_000);
    expect(chats.recentRatios()).toHaveLength(10);
    // 10 chats at 3x here, 30 at 1x elsewhere: a quarter ran slow, the 90th percentile is 3.
    expect(chats.slowdown(Array.from({ length: 30 }, () => 1))).toBe(3);
    // 10 at 3x here, 95 at 1x elsewhere: under a tenth ran slow, the 90th percentile is 1.
    expect(chats.slowdown(Array.from({ length: 95 }, () => 1))).toBe(1);
  });

  test('ignores what is not a number and stays within [1, 4]', () => {
    const clock = new ManualClock();
    const chats = new AdmittedChats(clock, { minimumChats: 5 });
    expect(chats.slowdown(Array.from({ length: 20 }, () => 40))).toBe(4);
    expect(chats.slowdown([...Array.from({ length: 20 }, () => 2), Number.NaN])).toBe(2);
  });
});

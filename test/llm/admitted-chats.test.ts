import { ManualClock } from '../../api/clock';
import { AdmittedChats, pooledSlowdown } from '../../api/llm/admitted-chats';

/** What finished chats teach admission: the measured slowdown, and how long it remembers. */
describe('AdmittedChats slowdown', () => {
  /** Admits `count` chats estimated at 1 s, each finishing after `actualMs`, one after another. */
  function finish(chats: AdmittedChats, clock: ManualClock, count: number, actualMs: number): void {
    for (let index = 0; index < count; index++) {
      const admission = chats.admit(`run-${clock.now()}-${index}`, 1_000);
      chats.recordCall(`run-${clock.now()}-${index}`);
      clock.advance(actualMs);
      admission.release('completed');
    }
  }

  test('is 1 until enough chats finished, then the 90th percentile of actual / estimated', () => {
    const clock = new ManualClock();
    const chats = new AdmittedChats(clock, { minimumChats: 5 });
    finish(chats, clock, 9, 2_000);
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
});

describe('pooledSlowdown (several instances decide as one)', () => {
  test('weights each instance by the chats its slowdown rests on', () => {
    expect(
      pooledSlowdown([
        { slowdown: 3, chats: 10 },
        { slowdown: 1, chats: 30 },
      ]),
    ).toBe(1.5);
  });

  test('an instance with nothing measured yet counts for nothing; none measured is 1', () => {
    expect(
      pooledSlowdown([
        { slowdown: 1, chats: 0 },
        { slowdown: 2, chats: 20 },
      ]),
    ).toBe(2);
    expect(pooledSlowdown([{ slowdown: 1, chats: 0 }])).toBe(1);
    expect(pooledSlowdown([])).toBe(1);
  });

  test('stays within [1, 4] whatever another instance publishes', () => {
    expect(pooledSlowdown([{ slowdown: 40, chats: 10 }])).toBe(4);
    expect(
      pooledSlowdown([
        { slowdown: Number.NaN, chats: 10 },
        { slowdown: 2, chats: 10 },
      ]),
    ).toBe(2);
  });
});

import { ManualClock } from '../../api/clock';
import { ClusterLoadView } from '../../api/llm/redis/cluster-load';

/** The shared window as one instance pieces it together from replies, heartbeats and announcements. */
describe('ClusterLoadView', () => {
  const figures = (active: number, startsLastMinute = 0) => ({
    active,
    startsLastMinute,
    tokensLastMinute: 0,
  });

  test('the newest news by Redis time wins, whatever the order it arrives in', () => {
    const view = new ClusterLoadView(new ManualClock());
    view.note(1_000, figures(3, 10));
    // A reply sent before that announcement but read after it.
    view.note(999, figures(1, 9));
    expect(view.current()).toMatchObject({ active: 3, startsLastMinute: 10, redisAt: 1_000 });
    view.announced('1001 2');
    // A release carries no window count: the last one known stands.
    expect(view.current()).toMatchObject({ active: 2, startsLastMinute: 10 });
  });

  test('news of the same millisecond keeps the larger count: never understated', () => {
    const view = new ClusterLoadView(new ManualClock());
    view.announced('2000 5 12');
    view.note(2_000, figures(4, 11));
    expect(view.current()).toMatchObject({ active: 5, startsLastMinute: 12 });
  });

  test('a heartbeat brings the start buckets, kept even when an announcement is newer', () => {
    const view = new ClusterLoadView(new ManualClock());
    view.announced('3000 6 20');
    const recentStarts = [{ at: 0, count: 20 }];
    view.observe({ ...figures(1, 19), redisAt: 2_990, recentStarts });
    expect(view.current()).toMatchObject({ active: 6, startsLastMinute: 20, recentStarts });
  });

  test('a malformed announcement changes nothing', () => {
    const view = new ClusterLoadView(new ManualClock());
    view.announced('4000 2');
    view.announced('garbage');
    view.announced('');
    expect(view.current()).toMatchObject({ active: 2, redisAt: 4_000 });
  });

  test("a start's announcement answers how many started and whether calls still wait; a release's, nothing", () => {
    const view = new ClusterLoadView(new ManualClock());
    expect(view.announced('5000.25 3 40 2 1')).toEqual({ redisAt: 5_000.25, count: 2, waiting: true });
    expect(view.announced('5001 4 41 1 0')).toEqual({ redisAt: 5_001, count: 1, waiting: false });
    expect(view.announced('5002 3')).toBeUndefined();
    expect(view.announced('garbage 1 2 3 1')).toBeUndefined();
    expect(view.current()).toMatchObject({ active: 3, startsLastMinute: 41 });
  });
});

import { ManualClock } from '../../api/clock';
import { RollingHistogram, percentile } from '../../api/llm/rolling-histogram';

describe('RollingHistogram', () => {
  it('reports real percentiles, not averages', () => {
    const clock = new ManualClock(0);
    const histogram = new RollingHistogram({ clock });
    for (let i = 1; i <= 100; i++) histogram.record(i === 100 ? 10_000 : i);
    const summary = histogram.summary();
    expect(summary.p50).toBe(50);
    expect(summary.p95).toBe(95);
    expect(summary.p99).toBe(99);
    expect(summary.mean).toBeCloseTo((99 * 50 + 10_000) / 100);
  });

  it('forgets samples older than the window', () => {
    const clock = new ManualClock(0);
    const histogram = new RollingHistogram({ clock, windowMs: 60_000, bucketMs: 10_000 });
    histogram.record(1_000);
    clock.advance(30_000);
    histogram.record(10);
    expect(histogram.summary().count).toBe(2);
    clock.advance(40_000);
    expect(histogram.summary()).toMatchObject({ count: 1, p95: 10 });
    clock.advance(60_000);
    expect(histogram.summary()).toMatchObject({ count: 0, p95: 0, mean: 0 });
  });

  it('keeps memory bounded with reservoir sampling while counts stay exact', () => {
    const clock = new ManualClock(0);
    let seed = 1;
    const random = () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
    const histogram = new RollingHistogram({ clock, samplesPerBucket: 100, random });
    for (let i = 0; i < 10_000; i++) histogram.record(i % 100);
    const summary = histogram.summary();
    expect(summary.count).toBe(10_000);
    expect(summary.p50).toBeGreaterThan(35);
    expect(summary.p50).toBeLessThan(65);
  });

  it('uses nearest-rank percentiles', () => {
    expect(percentile([1, 2, 3, 4], 0.5)).toBe(2);
    expect(percentile([], 0.95)).toBe(0);
  });
});

import { StartWindow, TokenWindow, spreadWindowMs } from '../../api/llm/rate-window';
import { maxInWindow } from './helpers';

describe('StartWindow', () => {
  it('never lets any rolling 60 s window hold more than the limit, under constant pressure', () => {
    const limit = 30;
    const window = new StartWindow({ capacity: limit, burstWindowMs: 0 });
    const starts: number[] = [];
    // Greedy caller: starts whenever allowed, probing at irregular instants over 5 minutes.
    for (let now = 0; now < 300_000; now += 137) {
      while (window.nextAllowedAt(limit, now) <= now) {
        window.record(now);
        starts.push(now);
      }
    }
    expect(maxInWindow(starts, 60_000)).toBe(limit);
    // And the limiter does use its allowance: about limit per minute over 5 minutes.
    expect(starts.length).toBeGreaterThanOrEqual(limit * 5);
  });

  it('spreads starts: at most ceil(limit/6) per 10 s with the burst window on', () => {
    const limit = 60;
    const window = new StartWindow({ capacity: limit });
    const starts: number[] = [];
    for (let now = 0; now < 180_000; now += 50) {
      while (window.nextAllowedAt(limit, now) <= now) {
        window.record(now);
        starts.push(now);
      }
    }
    expect(maxInWindow(starts, 10_000)).toBe(10);
    expect(maxInWindow(starts, 60_000)).toBeLessThanOrEqual(limit);
  });

  it('tells exactly when the next start becomes possible', () => {
    const window = new StartWindow({ capacity: 3, burstWindowMs: 0 });
    window.record(1_000);
    window.record(2_000);
    window.record(5_000);
    expect(window.nextAllowedAt(3, 6_000)).toBe(61_000);
    expect(window.nextAllowedAt(3, 61_000)).toBe(61_000);
    // A lower effective limit (AIMD) looks further back: the 2nd most recent start.
    expect(window.nextAllowedAt(2, 6_000)).toBe(62_000);
  });

  it('grows its ring lazily and counts starts in the last minute', () => {
    const window = new StartWindow({ capacity: 10_000_000, burstWindowMs: 0 });
    for (let i = 0; i < 5_000; i++) window.record(i * 20);
    expect(window.countSince(100_000 - 60_000)).toBe(3_000 - 1);
    expect(window.countSince(-1)).toBe(5_000);
  });
});

describe('TokenWindow', () => {
  it('reserves the estimate, then settles it to real usage', () => {
    const tokens = new TokenWindow(1_000);
    const first = tokens.reserve(800, 0);
    expect(tokens.nextAllowedAt(300, 10)).toBe(60_000);
    tokens.settle(first, 500, 20);
    expect(tokens.used(20)).toBe(500);
    expect(tokens.nextAllowedAt(300, 20)).toBe(20);
  });

  it('lets a request larger than the limit start once the window is empty, not never', () => {
    const tokens = new TokenWindow(1_000);
    tokens.reserve(100, 0);
    expect(tokens.nextAllowedAt(5_000, 1)).toBe(60_000);
    expect(tokens.nextAllowedAt(5_000, 60_000)).toBe(60_000);
  });

  it('ignores settlements of reservations that already left the window', () => {
    const tokens = new TokenWindow(1_000);
    const old = tokens.reserve(900, 0);
    tokens.reserve(50, 30_000);
    tokens.settle(old, 10, 61_000);
    expect(tokens.used(61_000)).toBe(50);
  });
});

describe('spreading a minute allowance', () => {
  test('the sub-window holds about ten starts, within 1-10 s', () => {
    expect(spreadWindowMs(60)).toBe(10_000);
    expect(spreadWindowMs(500)).toBe(1_200);
    expect(spreadWindowMs(6_000)).toBe(1_000);
    expect(spreadWindowMs(0)).toBe(10_000);
  });

  test('at 600 rpm, calls flow at ~10 per second instead of bursting a 10 s allowance and stalling', () => {
    const window = new StartWindow({ capacity: 600 });
    let now = 0;
    const starts: number[] = [];
    while (starts.length < 200) {
      now = Math.max(now, window.nextAllowedAt(600, now));
      window.record(now);
      starts.push(now);
    }
    // No second holds more than the sub-window's share, and no pause lasts past one second (a 10 s
    // sub-window let 100 go at once, then nothing for 10 s).
    expect(maxInWindow(starts, 1_000)).toBeLessThanOrEqual(10);
    const gaps = starts.slice(1).map((at, index) => at - starts[index]);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(1_000);
  });
});

import { ManualClock } from '../../api/clock';
import { HeartbeatTicker } from '../../api/streaming/heartbeat-ticker';
import { Run } from '../../api/streaming/run';
import { RunRegistry } from '../../api/streaming/run-registry';

/** Two streams registered with `ticker`, each counting the pings it got. */
function twoCountedStreams(ticker: HeartbeatTicker) {
  const pings = { a: 0, b: 0 };
  const a = { heartbeat: () => pings.a++ };
  const b = { heartbeat: () => pings.b++ };
  ticker.add(a);
  ticker.add(b);
  return { pings, a, b };
}

describe('HeartbeatTicker', () => {
  test('one timer pings every registered stream each interval, and disarms when none is left', () => {
    const clock = new ManualClock();
    const ticker = new HeartbeatTicker({ clock, intervalMs: 1000 });
    const { pings, a, b } = twoCountedStreams(ticker);
    expect(clock.pendingTimers()).toBe(1);
    clock.advance(1000);
    expect(pings).toEqual({ a: 1, b: 1 });
    ticker.delete(a);
    clock.advance(2000);
    expect(pings).toEqual({ a: 1, b: 3 });
    ticker.delete(b);
    expect(clock.pendingTimers()).toBe(0);
    expect(ticker.size).toBe(0);
  });

  test('a stream that closes while being pinged does not disturb the others', () => {
    const clock = new ManualClock();
    const ticker = new HeartbeatTicker({ clock, intervalMs: 500 });
    let later = 0;
    const closing = { heartbeat: () => ticker.delete(closing) };
    ticker.add(closing);
    ticker.add({ heartbeat: () => later++ });
    clock.advance(1000);
    expect(later).toBe(2);
    expect(ticker.size).toBe(1);
  });
});

describe('HeartbeatTicker hand-over', () => {
  test('a stream handed over stays counted but the ticks skip it, until it is taken back or deleted', () => {
    const clock = new ManualClock();
    const ticker = new HeartbeatTicker({ clock, intervalMs: 1000 });
    const { pings, a } = twoCountedStreams(ticker);
    ticker.handOver(a);
    clock.advance(1000);
    expect(pings).toEqual({ a: 0, b: 1 });
    expect(ticker.size).toBe(2);
    expect(ticker.lastTickAt).toBe(clock.now());
    ticker.takeBack(a);
    clock.advance(1000);
    expect(pings).toEqual({ a: 1, b: 2 });
    // Deleted while handed over, then added again: pinged like any new stream.
    ticker.handOver(a);
    ticker.delete(a);
    ticker.add(a);
    clock.advance(1000);
    expect(pings).toEqual({ a: 2, b: 3 });
    // A target that is not registered cannot be handed over (nothing to skip later).
    const c = { heartbeat: () => undefined };
    ticker.handOver(c);
    ticker.add(c);
    expect(ticker.size).toBe(3);
  });

  test('with many streams, slices count the pings made: handed-over streams are not pinged', async () => {
    const clock = new ManualClock();
    const ticker = new HeartbeatTicker({ clock, intervalMs: 1000 });
    let pinged = 0;
    const targets = Array.from({ length: 1000 }, () => ({ heartbeat: () => pinged++ }));
    for (const target of targets) ticker.add(target);
    for (const target of targets.slice(0, 900)) ticker.handOver(target);
    clock.advance(1000);
    // 100 pings: one slice, done in the tick itself.
    expect(pinged).toBe(100);
    await new Promise((resolve) => setImmediate(resolve));
    expect(pinged).toBe(100);
  });
});

describe('Run log', () => {
  test('a listener that resumes after any id receives every later event exactly once', () => {
    const run = new Run('c', 'u', 1000);
    run.emit('run', { runId: run.id, conversationId: 'c' });
    for (let i = 0; i < 5; i++) run.emit('delta', { agent: 'host', text: `t${i}` });
    const seen: number[] = [];
    run.subscribe((record) => seen.push(record.id), 3);
    run.emit('delta', { agent: 'host', text: 'live' });
    expect(seen).toEqual([4, 5, 6, 7]);
  });

  test('successive `queued` events replace each other in the log, ids still increasing', () => {
    const run = new Run('c', 'u', 1000);
    run.emit('run', { runId: run.id, conversationId: 'c' });
    for (let position = 5; position >= 1; position--)
      run.emit('queued', { position, estimatedWaitMs: position, token: 't' });
    run.emit('agent_start', { agent: 'host' });
    expect(run.events().map((record) => [record.id, record.event])).toEqual([
      [1, 'run'],
      [6, 'queued'],
      [7, 'agent_start'],
    ]);
  });

  test('the log is bounded: the oldest events go first, except the run event a replay starts with', () => {
    const run = new Run('c', 'u', 10);
    run.emit('run', { runId: run.id, conversationId: 'c' });
    for (let i = 0; i < 25; i++) run.emit('delta', { agent: 'host', text: String(i) });
    expect(run.events()).toHaveLength(10);
    const seen: number[] = [];
    run.subscribe((record) => seen.push(record.id));
    expect(seen).toEqual([1, 18, 19, 20, 21, 22, 23, 24, 25, 26]);
    const resumed: number[] = [];
    run.subscribe((record) => resumed.push(record.id), 20);
    expect(resumed).toEqual([21, 22, 23, 24, 25, 26]);
  });

  test('a finished run stays replayable for the retention time, then is forgotten', async () => {
    const clock = new ManualClock();
    const registry = new RunRegistry({ clock, retentionMs: 60_000, maxEventsPerRun: 100 });
    const run = registry.create('c', 'u');
    run.emit('error', { code: 'cancelled', message: 'x' });
    await run.finished;
    await Promise.resolve();
    clock.advance(59_999);
    expect(registry.get(run.id)).toBe(run);
    clock.advance(1);
    expect(registry.get(run.id)).toBeUndefined();
  });

  test('finished runs expire in the order they finished, with one timer for all of them', async () => {
    const clock = new ManualClock();
    const registry = new RunRegistry({ clock, retentionMs: 60_000, maxEventsPerRun: 100 });
    const runs = Array.from({ length: 3 }, () => registry.create('c', 'u'));
    for (const run of runs) {
      run.emit('error', { code: 'cancelled', message: 'x' });
      await run.finished;
      await Promise.resolve();
      clock.advance(10_000);
    }
    expect(clock.pendingTimers()).toBe(1);
    clock.advance(30_000); // the first finished 60 s ago
    expect(runs.map((run) => registry.get(run.id) !== undefined)).toEqual([false, true, true]);
    clock.advance(10_000);
    expect(runs.map((run) => registry.get(run.id) !== undefined)).toEqual([false, false, true]);
    clock.advance(10_000);
    expect(registry.size()).toBe(0);
    expect(clock.pendingTimers()).toBe(0);
  });
});

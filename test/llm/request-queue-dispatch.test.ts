import { flushMicrotasks, ManualClock } from '../../api/clock';
import type { AgentName } from '../../api/agents/agent-name';
import { InMemoryLimiter, type Limiter, type Permit, type StartBatch } from '../../api/llm/limiter';
import { ProviderRoom } from '../../api/llm/provider-room';
import { RequestQueue, type Slot } from '../../api/llm/request-queue';

/**
 * The queue asks the limiter for every call waiting at its head in one answer (a limiter behind a
 * round trip fills the free slots at once), and gives back at once what nobody can take. The
 * limiter here answers only when the test says: a round trip as long as the test wants.
 */
class SlowLimiter implements Limiter {
  readonly asks: number[] = [];
  private pending: Array<() => void> = [];
  /** Releases take effect at once but their answers never come (a reply still on its way). */
  unansweredReleases = false;

  constructor(readonly inner: InMemoryLimiter) {}

  tryStart(estimatedTokens: number) {
    return this.inner.tryStart(estimatedTokens);
  }
  async tryStartMany(
    estimatedTokens: number,
    orderKey: number | undefined,
    count: number,
  ): Promise<StartBatch> {
    this.asks.push(count);
    await new Promise<void>((resolve) => this.pending.push(resolve));
    return this.inner.tryStartMany(estimatedTokens, orderKey, count);
  }
  /** Every ask sent so far gets its answer. */
  answer(): void {
    for (const resolve of this.pending.splice(0)) resolve();
  }
  release(permit: Permit) {
    const released = this.inner.release(permit);
    return this.unansweredReleases ? new Promise<void>(() => undefined) : released;
  }
  settle(permit: Permit, tokens: number) {
    return this.inner.settle(permit, tokens);
  }
  holdStarts(durationMs: number) {
    return this.inner.holdStarts(durationMs);
  }
  snapshot() {
    return this.inner.snapshot();
  }
}

function setup(concurrency: number, maxTpm = 0) {
  const clock = new ManualClock(0);
  const limiter = new SlowLimiter(
    new InMemoryLimiter({ clock, maxConcurrent: concurrency, maxRpm: 1_000_000, maxTpm, burstWindowMs: 0 }),
  );
  const queue = new RequestQueue({
    clock,
    limiter,
    queueMax: 1_000,
    priorityOrder: ['host', 'planner', 'critic', 'reporter'],
  });
  const slots: Slot[] = [];
  const take = (
    userId: string,
    options: { signal?: AbortSignal; agentType?: AgentName; estimatedTokens?: number } = {},
  ) =>
    queue
      .acquire(
        {
          agentType: options.agentType ?? 'host',
          userId,
          conversationId: `c-${userId}`,
          estimatedTokens: options.estimatedTokens ?? 1,
          deadline: clock.now() + 60_000,
        },
        options.signal ?? new AbortController().signal,
      )
      .then((slot) => {
        slots.push(slot);
        return slot;
      });
  return { limiter, queue, slots, take };
}

describe('RequestQueue: several starts per answer', () => {
  test('the calls that queued during one round trip are started by the next single answer', async () => {
    const { limiter, queue, slots, take } = setup(40);
    void take('first');
    for (let index = 0; index < 20; index++) void take(`u${index}`);
    // The first ask went out with one call waiting; the twenty others wait for its answer.
    expect(limiter.asks).toEqual([1]);
    limiter.answer();
    await flushMicrotasks();
    // One ask for the sixteen at the head (the most per answer), then one for the rest.
    expect(limiter.asks).toEqual([1, 16]);
    limiter.answer();
    await flushMicrotasks();
    expect(limiter.asks).toEqual([1, 16, 4]);
    limiter.answer();
    await flushMicrotasks();
    expect(slots).toHaveLength(21);
    expect(queue.activeCount).toBe(21);
    expect(limiter.snapshot().active).toBe(21);
  });

  test('a partial answer starts what it can; the rest wait for a release', async () => {
    const { limiter, queue, slots, take } = setup(3);
    void take('a');
    for (let index = 0; index < 5; index++) void take(`u${index}`);
    limiter.answer();
    await flushMicrotasks();
    limiter.answer();
    await flushMicrotasks();
    expect(slots).toHaveLength(3);
    expect(queue.queueLength).toBe(3);
    slots[0].release();
    await flushMicrotasks();
    limiter.answer();
    await flushMicrotasks();
    expect(slots).toHaveLength(4);
    expect(limiter.snapshot().active).toBe(3);
  });

  test('a release asks for the next call at once: a slot changes hands in one round trip, not two', async () => {
    const { limiter, queue, slots, take } = setup(1);
    void take('a');
    void take('b');
    // a starts; b is refused twice (its own ask, and the one its arrival asked for): no ask is out.
    for (let round = 0; round < 3; round++) {
      limiter.answer();
      await flushMicrotasks();
    }
    expect(slots).toHaveLength(1);
    expect(limiter.asks).toEqual([1, 1, 1]);
    limiter.unansweredReleases = true;
    const asksBefore = limiter.asks.length;
    slots[0].release();
    // The ask went out beside the release, whose answer never comes.
    expect(limiter.asks.length).toBe(asksBefore + 1);
    limiter.answer();
    await flushMicrotasks();
    expect(slots).toHaveLength(2);
    expect(queue.activeCount).toBe(1);
  });

  test('permits for calls that left while the answer was on its way go back to the limiter at once', async () => {
    const { limiter, queue, slots, take } = setup(10);
    void take('a');
    const leaving = Array.from({ length: 6 }, () => new AbortController());
    const left = leaving.map((controller, index) =>
      take(`l${index}`, { signal: controller.signal }).catch(() => 'left'),
    );
    limiter.answer();
    await flushMicrotasks();
    expect(limiter.asks).toEqual([1, 6]);
    for (const controller of leaving.slice(0, 4)) controller.abort();
    limiter.answer();
    await flushMicrotasks();
    expect(await Promise.all(left.slice(0, 4))).toEqual(['left', 'left', 'left', 'left']);
    expect(slots).toHaveLength(3);
    // Six granted for two callers left: the other four slots are free again.
    expect(queue.activeCount).toBe(3);
    expect(limiter.snapshot().active).toBe(3);
  });

  test('with a token limit, a call whose estimate exceeds the head’s waits for its own ask', async () => {
    const { limiter, slots, take } = setup(10, 10_000);
    void take('a', { estimatedTokens: 100 });
    void take('small', { estimatedTokens: 100 });
    void take('large', { estimatedTokens: 900 });
    limiter.answer();
    await flushMicrotasks();
    expect(limiter.asks).toEqual([1, 2]);
    limiter.answer();
    await flushMicrotasks();
    // The batch reserved 100 tokens per start: 'large' was not given one of them.
    expect(slots).toHaveLength(2);
    expect(limiter.asks).toEqual([1, 2, 1]);
    limiter.answer();
    await flushMicrotasks();
    expect(slots).toHaveLength(3);
    // The permit it was not given was settled at zero: only what was started counts.
    expect(limiter.snapshot().tokensLastMinute).toBe(1_100);
  });
});

describe('RequestQueue: the room it reports to admission', () => {
  test('where RPM binds, free slots are no room: the room hears the starts the rate windows allow now', async () => {
    const clock = new ManualClock(0);
    // 12 a minute, spread 2 per 10 s; ten slots.
    const limiter = new InMemoryLimiter({
      clock,
      maxConcurrent: 10,
      maxRpm: 12,
      maxTpm: 0,
      burstWindowMs: 10_000,
    });
    const room = new ProviderRoom(10, clock);
    const queue = new RequestQueue({ clock, limiter, queueMax: 100, priorityOrder: ['host'], room });
    const call = () =>
      queue
        .acquire(
          { agentType: 'host', userId: 'u', conversationId: 'c', estimatedTokens: 1, deadline: 1e9 },
          new AbortController().signal,
        )
        .then((slot) => slot.release());
    await call();
    await flushMicrotasks();
    expect(room.explain()).toMatchObject({ callsWaiting: 0, freeSlots: 1 });
    await call();
    await flushMicrotasks();
    // Nine slots free, but no start until the sub-window turns over: no room for a new chat's call.
    expect(limiter.snapshot().limits.concurrency - limiter.snapshot().active).toBe(10);
    expect(room.explain()).toMatchObject({ callsWaiting: 0, freeSlots: 0 });
    // The window opens with time alone: the room hears of it without a call coming or going.
    clock.advance(10_001);
    await flushMicrotasks();
    expect(room.explain()).toMatchObject({ freeSlots: 2 });
  });

  test('where RPM binds, the calls in flight come back for starts: the rate sustains rpm × call time of them, the rest is room', async () => {
    const clock = new ManualClock(0);
    // 600 a minute (10 a second) and 100 slots: with 2 s calls the rate sustains 20 in flight.
    const limiter = new InMemoryLimiter({
      clock,
      maxConcurrent: 100,
      maxRpm: 600,
      maxTpm: 0,
      burstWindowMs: 0,
    });
    const room = new ProviderRoom(100, clock);
    let callTimeMs: number | undefined;
    const queue = new RequestQueue({
      clock,
      limiter,
      queueMax: 100,
      priorityOrder: ['host'],
      room,
      callTimeMs: () => callTimeMs,
    });
    const start = () =>
      queue.acquire(
        { agentType: 'host', userId: 'u', conversationId: 'c', estimatedTokens: 1, deadline: 1e9 },
        new AbortController().signal,
      );
    const slots: Slot[] = [];
    for (let index = 0; index < 15; index++) slots.push(await start());
    await flushMicrotasks();
    // Cold: no call time measured yet, so only the windows' allowance (585 starts) and the slots count.
    expect(room.explain()).toMatchObject({ freeSlots: 85 });
    callTimeMs = 2_000;
    queue.wake();
    await flushMicrotasks();
    // 20 sustained, 15 in flight: 5 more chats' calls, not the 85 idle slots.
    expect(room.explain()).toMatchObject({ freeSlots: 5 });
    slots.pop()!.release();
    await flushMicrotasks();
    expect(room.explain()).toMatchObject({ freeSlots: 6 });
    // Calls twice as long: each chat comes back half as often, so twice as many in flight.
    callTimeMs = 4_000;
    queue.wake();
    await flushMicrotasks();
    expect(room.explain()).toMatchObject({ freeSlots: 26 });
    for (const slot of slots) slot.release();
  });
});

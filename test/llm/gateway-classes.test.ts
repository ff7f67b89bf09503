import { ManualClock } from '../../api/clock';
import type { AppError } from '../../api/errors';
import { InMemoryLimiter } from '../../api/llm/limiter';
import type { PriorityClass } from '../../api/llm/priority-class';
import { RequestQueue, type AcquireRequest, type Slot } from '../../api/llm/request-queue';
import { drain } from './helpers';

/** The gateway's classes (interactive, batch) in the same queue as the agents' calls. */
function setup(
  priorityOrder: PriorityClass[] = ['host', 'planner', 'critic', 'reporter'],
  limits: { rpm: number; concurrency: number } = { rpm: 1_000_000, concurrency: 1 },
) {
  const clock = new ManualClock(0);
  const limiter = new InMemoryLimiter({
    clock,
    maxConcurrent: limits.concurrency,
    maxRpm: limits.rpm,
    maxTpm: 0,
    burstWindowMs: 0,
  });
  const queue = new RequestQueue({ clock, limiter, queueMax: 10_000, priorityOrder, agingStepMs: 5_000 });
  const order: string[] = [];
  const slots = new Map<string, Slot>();
  const errors = new Map<string, AppError>();
  const enqueue = (
    label: string,
    agentType: PriorityClass,
    userId = 'u1',
    extra: Partial<AcquireRequest> = {},
  ) =>
    queue
      .acquire(
        {
          agentType,
          userId,
          conversationId: `c-${label}`,
          estimatedTokens: 1,
          deadline: clock.now() + 600_000,
          ...extra,
        },
        new AbortController().signal,
      )
      .then(
        (slot) => {
          order.push(label);
          slots.set(label, slot);
        },
        (error: AppError) => {
          errors.set(label, error);
        },
      );
  const release = async (label: string) => {
    slots.get(label)!.release();
    await drain();
    // Calls below the agents' classes are paced (60 s / RPM apart): a moment later they may start.
    clock.advance(1);
    await drain();
  };
  return { clock, queue, order, errors, enqueue, release };
}

describe('gateway classes in the request queue', () => {
  it('rank after the agents by default: interactive, then batch', async () => {
    const { order, enqueue, release } = setup();
    void enqueue('blocker', 'host');
    await drain();
    void enqueue('batch', 'batch', 'etl');
    void enqueue('interactive', 'interactive', 'svc');
    void enqueue('reporter', 'reporter');
    await drain();
    for (const label of ['blocker', 'reporter', 'interactive']) await release(label);
    expect(order).toEqual(['blocker', 'reporter', 'interactive', 'batch']);
  });

  it('take the place LLM_PRIORITY_ORDER gives them', async () => {
    const { order, enqueue, release } = setup([
      'interactive',
      'host',
      'planner',
      'critic',
      'reporter',
      'batch',
    ]);
    void enqueue('blocker', 'host');
    await drain();
    void enqueue('host', 'host');
    void enqueue('interactive', 'interactive', 'svc');
    await drain();
    for (const label of ['blocker', 'interactive']) await release(label);
    expect(order).toEqual(['blocker', 'interactive', 'host']);
  });

  it('age like any class: a batch call that waited long enough goes before a fresh host call', async () => {
    const { clock, order, enqueue, release } = setup();
    void enqueue('blocker', 'host');
    await drain();
    void enqueue('batch', 'batch', 'etl');
    await drain();
    // batch ranks 5 below host: after 5 × 5 s of waiting it beats a call that just arrived.
    clock.advance(25_001);
    void enqueue('host', 'host');
    await drain();
    await release('blocker');
    expect(order).toEqual(['blocker', 'batch']);
  });

  it('share a class fairly between callers', async () => {
    const { order, enqueue, release } = setup();
    void enqueue('blocker', 'host');
    await drain();
    for (let index = 1; index <= 3; index++) void enqueue(`flood-${index}`, 'batch', 'flooder');
    void enqueue('other', 'batch', 'other-job');
    await drain();
    for (const label of ['blocker', 'flood-1']) await release(label);
    expect(order).toEqual(['blocker', 'flood-1', 'other']);
  });

  it('share a flooded class equally, however much more one caller sends than another', async () => {
    // One call in flight at a time, 100 ms each: the class serves 1 call per 100 ms, and the three
    // callers send 3, 2 and 1 calls per 100 ms, each call refused after 1 s of waiting. Every
    // caller sends more than its third: each should get a third, whatever it sent beyond it.
    const { clock, order, enqueue, release } = setup();
    const perTick: Record<string, number> = { 'batch-1': 3, 'batch-2': 2, 'batch-3': 1 };
    let released = 0;
    for (let tick = 0; tick < 90; tick++) {
      for (const [caller, count] of Object.entries(perTick))
        for (let index = 0; index < count; index++)
          void enqueue(`${caller}/${tick}.${index}`, 'batch', caller, { maxWaitMs: 1_000 });
      await drain();
      clock.advance(99);
      await drain();
      // The call in flight ends (release moves the clock by the last 1 ms); the next one starts.
      const started = order.length;
      while (released < started) await release(order[released++]);
    }
    const served = Object.keys(perTick).map(
      (caller) => order.filter((label) => label.startsWith(`${caller}/`)).length,
    );
    expect(served.reduce((sum, count) => sum + count, 0)).toBeGreaterThanOrEqual(88);
    expect(Math.max(...served) - Math.min(...served)).toBeLessThanOrEqual(2);
  });

  it('are paced: below the agents, a call starts no sooner than 60 s / RPM after the last start', async () => {
    // 600 rpm: one start per 100 ms for paced calls; concurrency is no limit here.
    const { clock, order, enqueue } = setup(undefined, { rpm: 600, concurrency: 100 });
    void enqueue('host', 'host');
    void enqueue('batch-1', 'batch', 'etl');
    void enqueue('batch-2', 'batch', 'etl');
    await drain();
    // The host call is not paced; the first batch call starts 100 ms after it, the second 100 ms later.
    expect(order).toEqual(['host']);
    clock.advance(99);
    await drain();
    expect(order).toEqual(['host']);
    clock.advance(1);
    await drain();
    expect(order).toEqual(['host', 'batch-1']);
    clock.advance(100);
    await drain();
    expect(order).toEqual(['host', 'batch-1', 'batch-2']);
  });

  it("keep the agents' recent starts free in the rolling minute", async () => {
    // 12 rpm: paced calls 5 s apart. 8 host calls at once: the minute holds 8 starts and the
    // agents took 8 in the last 10 s, so a batch call must leave 8 free: 8 + 8 >= 12, it waits.
    const { clock, order, enqueue } = setup(undefined, { rpm: 12, concurrency: 100 });
    for (let index = 1; index <= 8; index++) void enqueue(`host-${index}`, 'host', `u${index}`);
    await drain();
    void enqueue('batch', 'batch', 'etl');
    await drain();
    clock.advance(5_000);
    await drain();
    expect(order).not.toContain('batch');
    // 10 s on, those starts no longer count as the agents' recent demand: the batch call goes.
    clock.advance(5_000);
    await drain();
    expect(order).toContain('batch');
  });

  it('without recent agent starts, a paced call uses the whole quota', async () => {
    const { clock, order, enqueue } = setup(undefined, { rpm: 12, concurrency: 100 });
    void enqueue('host', 'host');
    await drain();
    void enqueue('batch', 'batch', 'etl');
    await drain();
    clock.advance(5_000);
    await drain();
    expect(order).toEqual(['host', 'batch']);
  });

  it('a call with maxWaitMs leaves the queue with queue_timeout once it waited that long', async () => {
    const { clock, errors, enqueue } = setup();
    void enqueue('blocker', 'host');
    await drain();
    void enqueue('batch', 'batch', 'etl', { maxWaitMs: 10_000 });
    await drain();
    clock.advance(9_999);
    await drain();
    expect(errors.has('batch')).toBe(false);
    clock.advance(1);
    await drain();
    expect(errors.get('batch')?.code).toBe('queue_timeout');
  });
});

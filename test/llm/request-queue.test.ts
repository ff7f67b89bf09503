import { ManualClock } from '../../api/clock';
import type { AgentName } from '../../api/agents/agent-name';
import { AppError } from '../../api/errors';
import { InMemoryLimiter } from '../../api/llm/limiter';
import { RequestQueue, type AcquireRequest, type Slot } from '../../api/llm/request-queue';
import type { BreakerReading } from '../../api/llm/request-queue-types';
import type { BreakerState } from '../../api/llm/provider-breaker';
import { drain } from './helpers';

function setup(
  options: {
    concurrency?: number;
    rpm?: number;
    queueMax?: number;
    agingStepMs?: number;
    breaker?: BreakerReading;
  } = {},
) {
  const clock = new ManualClock(0);
  const limiter = new InMemoryLimiter({
    clock,
    maxConcurrent: options.concurrency ?? 1,
    maxRpm: options.rpm ?? 1_000_000,
    maxTpm: 0,
    burstWindowMs: 0,
  });
  const queue = new RequestQueue({
    clock,
    limiter,
    queueMax: options.queueMax ?? 10_000,
    priorityOrder: ['host', 'planner', 'critic', 'reporter'],
    agingStepMs: options.agingStepMs ?? 5_000,
    breaker: options.breaker,
  });
  const order: string[] = [];
  const slots = new Map<string, Slot>();
  const errors = new Map<string, AppError>();
  const enqueue = (
    label: string,
    agentType: AgentName,
    userId = 'u1',
    extra: Partial<AcquireRequest> = {},
    signal = new AbortController().signal,
  ) =>
    queue
      .acquire(
        {
          agentType,
          userId,
          conversationId: `c-${userId}`,
          estimatedTokens: 1,
          deadline: clock.now() + 600_000,
          ...extra,
        },
        signal,
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
  };
  return { clock, limiter, queue, order, slots, errors, enqueue, release };
}

describe('RequestQueue', () => {
  it('dispatches by priority class when calls wait together', async () => {
    const { order, enqueue, release } = setup();
    void enqueue('blocker', 'host');
    await drain();
    for (const agent of ['reporter', 'critic', 'planner', 'host'] as const) void enqueue(agent, agent);
    await drain();
    for (const label of ['blocker', 'host', 'planner', 'critic']) await release(label);
    expect(order).toEqual(['blocker', 'host', 'planner', 'critic', 'reporter']);
  });

  it('follows a configured later-stage-first order too', async () => {
    const clock = new ManualClock(0);
    const limiter = new InMemoryLimiter({
      clock,
      maxConcurrent: 1,
      maxRpm: 1000,
      maxTpm: 0,
      burstWindowMs: 0,
    });
    const queue = new RequestQueue({
      clock,
      limiter,
      queueMax: 100,
      priorityOrder: ['reporter', 'critic', 'planner', 'host'],
    });
    const order: string[] = [];
    const signal = new AbortController().signal;
    const take = (agentType: AgentName) =>
      queue
        .acquire({ agentType, userId: 'u', conversationId: 'c', estimatedTokens: 1, deadline: 1e9 }, signal)
        .then((slot) => {
          order.push(agentType);
          slot.release();
        });
    const all = (['host', 'planner', 'critic', 'reporter'] as const).map(take);
    await Promise.all(all);
    // The permit the first call asked for goes to the head when it is granted (a turn later, when
    // all four wait): every call follows the configured order.
    expect(order).toEqual(['reporter', 'critic', 'planner', 'host']);
  });

  async function reporterUnderHostStream(agingStepMs: number) {
    const { clock, queue, order, slots, enqueue } = setup({ agingStepMs });
    void enqueue('blocker', 'host');
    await drain();
    void enqueue('reporter', 'reporter', 'r');
    let reporterAt: number | undefined;
    // Hosts arrive twice as fast as they are served (1 call/s): the host class never empties.
    for (let t = 0; t < 60_000 && reporterAt === undefined; t += 500) {
      void enqueue(`host-${t}`, 'host', `h${t}`);
      await drain();
      if (t % 1_000 === 0) {
        const running = order[order.length - 1];
        slots.get(running)!.release();
        await drain();
      }
      if (order.includes('reporter')) reporterAt = clock.now();
      clock.advance(500);
    }
    return { reporterAt, queued: queue.queueLength };
  }

  it('ages: a low class still progresses under a sustained stream of high-class calls', async () => {
    const { reporterAt, queued } = await reporterUnderHostStream(5_000);
    // Reporter is 3 ranks below host: it wins once its wait exceeds the head host's by ~15 s.
    expect(reporterAt).toBeDefined();
    expect(reporterAt!).toBeLessThanOrEqual(32_000);
    expect(queued).toBeGreaterThan(10);
    // Control: without aging the same load starves the reporter for the whole minute.
    expect((await reporterUnderHostStream(1e12)).reporterAt).toBeUndefined();
  });

  it('is fair between users inside a class: one user with 50 calls does not delay another by 50 slots', async () => {
    const { order, enqueue, release } = setup();
    void enqueue('blocker', 'planner', 'heavy');
    await drain();
    for (let i = 0; i < 50; i++) void enqueue(`heavy-${i}`, 'planner', 'heavy');
    void enqueue('light', 'planner', 'light');
    await drain();
    await release('blocker');
    await release(order[order.length - 1]);
    // heavy-0 was queued first and goes first; the light user's single call is next.
    expect(order.slice(0, 3)).toEqual(['blocker', 'heavy-0', 'light']);
  });

  it('rejects with queue_timeout and removes a call that waits past its deadline', async () => {
    const { clock, queue, order, errors, enqueue, release } = setup();
    void enqueue('blocker', 'host');
    await drain();
    void enqueue('late', 'host', 'u2', { deadline: clock.now() + 1_000 });
    await drain();
    expect(queue.queueLength).toBe(1);
    clock.advance(999);
    await drain();
    expect(errors.get('late')).toBeUndefined();
    clock.advance(1);
    await drain();
    expect(errors.get('late')?.code).toBe('queue_timeout');
    expect(queue.queueLength).toBe(0);
    await release('blocker');
    expect(order).toEqual(['blocker']);
  });

  it('removes a queued call when its signal aborts', async () => {
    const { queue, order, errors, enqueue, release } = setup();
    void enqueue('blocker', 'host');
    await drain();
    const controller = new AbortController();
    void enqueue('gone', 'host', 'u2', {}, controller.signal);
    void enqueue('stays', 'host', 'u3');
    await drain();
    controller.abort(new AppError('cancelled'));
    await drain();
    expect(errors.get('gone')?.code).toBe('cancelled');
    expect(queue.queueLength).toBe(1);
    await release('blocker');
    expect(order).toEqual(['blocker', 'stays']);
  });

  it('releases a slot exactly once, however often release is called', async () => {
    const { queue, limiter, order, slots, enqueue } = setup({ concurrency: 2 });
    void enqueue('a', 'host');
    void enqueue('b', 'host');
    void enqueue('c', 'host');
    void enqueue('d', 'host');
    await drain();
    slots.get('a')!.release();
    slots.get('a')!.release();
    slots.get('a')!.release();
    await drain();
    expect(order).toEqual(['a', 'b', 'c']);
    expect(limiter.snapshot().active).toBe(2);
    for (const label of ['b', 'c', 'b', 'c']) slots.get(label)?.release();
    await drain();
    slots.get('d')!.release();
    slots.get('d')!.release();
    expect(limiter.snapshot().active).toBe(0);
    expect(queue.activeCount).toBe(0);
  });

  it('arms exactly one timer while blocked on the rate window, and dispatches when it opens', async () => {
    const { clock, order, enqueue, release } = setup({ concurrency: 10, rpm: 1 });
    for (let i = 0; i < 5; i++) void enqueue(`call-${i}`, 'host', `u${i}`);
    await drain();
    await release('call-0');
    expect(order).toEqual(['call-0']);
    // 4 queued deadline timers + the one wake-up.
    expect(clock.pendingTimers()).toBe(5);
    // The limiter's window is 60 s plus its 500 ms safety margin.
    clock.advance(60_499);
    await drain();
    expect(order).toHaveLength(1);
    clock.advance(1);
    await drain();
    expect(order).toEqual(['call-0', 'call-1']);
  });

  it('pauses dispatch and resumes it; in-flight calls are not touched', async () => {
    const { queue, order, enqueue, release } = setup({ concurrency: 2 });
    void enqueue('running', 'host');
    await drain();
    queue.pause();
    void enqueue('waiting', 'host');
    await drain();
    expect(order).toEqual(['running']);
    expect(queue.status().paused).toBe(true);
    await release('running');
    expect(order).toEqual(['running']);
    queue.resume();
    await drain();
    expect(order).toEqual(['running', 'waiting']);
  });

  it('clear rejects every queued call with queue_cleared', async () => {
    const { queue, errors, enqueue } = setup();
    void enqueue('running', 'host');
    await drain();
    for (let i = 0; i < 3; i++) void enqueue(`q${i}`, 'critic', `u${i}`);
    await drain();
    expect(queue.clear()).toBe(3);
    await drain();
    expect([...errors.values()].map((error) => error.code)).toEqual([
      'queue_cleared',
      'queue_cleared',
      'queue_cleared',
    ]);
    expect(queue.queueLength).toBe(0);
    expect(queue.activeCount).toBe(1);
  });

  it('reads the breaker before taking a permit: one call at a time half-open, open fails without starts', async () => {
    const breaker: { state: BreakerState; openError(): AppError } = {
      state: 'half_open',
      openError: () => new AppError('llm_unavailable'),
    };
    const { queue, limiter, slots, errors, enqueue, release } = setup({ concurrency: 5, breaker });
    for (const label of ['a', 'b', 'c']) void enqueue(label, 'host', label);
    await drain();
    // Half-open lets exactly one call through (the breaker's probe); the others are held, unstarted.
    expect([...slots.keys()]).toEqual(['a']);
    expect(limiter.snapshot()).toMatchObject({ active: 1, startsLastMinute: 1 });
    queue.wake();
    await drain();
    expect([...slots.keys()]).toEqual(['a']);
    expect(limiter.snapshot().startsLastMinute).toBe(1);

    // Its slot back without a verdict (still half-open): the next held call goes, alone.
    await release('a');
    expect([...slots.keys()]).toEqual(['a', 'b']);
    expect(limiter.snapshot()).toMatchObject({ active: 1, startsLastMinute: 2 });

    breaker.state = 'open';
    await release('b');
    expect(errors.get('c')?.code).toBe('llm_unavailable');
    expect(queue.queueLength).toBe(0);
    expect(limiter.snapshot()).toMatchObject({ active: 0, startsLastMinute: 2 });
    // While open a new call is refused at once, without a permit or a start.
    void enqueue('d', 'host', 'd');
    await drain();
    expect(errors.get('d')?.code).toBe('llm_unavailable');
    expect(limiter.snapshot()).toMatchObject({ active: 0, startsLastMinute: 2 });
  });

  it('lists queued calls before in-flight ones', async () => {
    const { queue, enqueue } = setup();
    void enqueue('active', 'host', 'u1', { runId: 'run-1' });
    await drain();
    void enqueue('other', 'planner', 'u2', { runId: 'run-2' });
    await drain();
    expect(queue.items().map((item) => [item.id > 0, item.state, item.userId, item.runId])).toEqual([
      [true, 'queued', 'u2', 'run-2'],
      [true, 'active', 'u1', 'run-1'],
    ]);
  });

  it('does not shed a call that bypasses the bound (a reserved or retried call)', async () => {
    const { errors, slots, enqueue, release } = setup({ queueMax: 1 });
    void enqueue('running', 'host');
    await drain();
    void enqueue('q1', 'host');
    void enqueue('reserved', 'planner', 'u2', { bypassBound: true });
    void enqueue('shed', 'host', 'u3');
    await drain();
    expect(errors.get('shed')?.code).toBe('overloaded');
    expect(errors.has('reserved')).toBe(false);
    await release('running');
    await release('q1');
    expect(slots.has('reserved')).toBe(true);
  });

  it('sheds past the queue bound with overloaded', async () => {
    const { errors, enqueue } = setup({ queueMax: 2 });
    void enqueue('running', 'host');
    await drain();
    void enqueue('q1', 'host');
    void enqueue('q2', 'host');
    void enqueue('q3', 'host');
    await drain();
    expect(errors.get('q3')?.code).toBe('overloaded');
    expect(errors.size).toBe(1);
  });

  it('reports items and status with per-agent figures', async () => {
    const { clock, queue, enqueue, release } = setup();
    void enqueue('a', 'planner', 'u1');
    await drain();
    void enqueue('b', 'critic', 'u2');
    await drain();
    clock.advance(2_000);
    expect(queue.items()).toEqual([
      expect.objectContaining({
        agentType: 'critic',
        userId: 'u2',
        conversationId: 'c-u2',
        state: 'queued',
        waitedMs: 2_000,
      }),
      expect.objectContaining({ agentType: 'planner', state: 'active', waitedMs: 0 }),
    ]);
    await release('a');
    const status = queue.status();
    expect(status).toMatchObject({
      queueLength: 0,
      activeRequests: 1,
      currentRPM: 2,
      maxConcurrency: 1,
      utilizationRate: '100%',
      paused: false,
    });
    expect(status.byAgent.critic).toMatchObject({ queued: 0, active: 1, p95WaitTime: 2_000 });
    expect(status.p95WaitTime).toBe(2_000);
  });
});

describe('RequestQueue parking (a run nobody listens to)', () => {
  it('holds a parked run’s waiting and later calls out of dispatch, and lets them compete again', async () => {
    const { queue, order, enqueue, release } = setup({ concurrency: 1 });
    void enqueue('blocker', 'host');
    await drain();
    void enqueue('parked-1', 'host', 'p', { runId: 'run-p' });
    void enqueue('other', 'reporter', 'o');
    await drain();
    queue.park('run-p');
    void enqueue('parked-2', 'host', 'p', { runId: 'run-p' });
    await drain();
    expect(queue.queueLength).toBe(3);
    expect(queue.parkedLength).toBe(2);
    await release('blocker');
    // The parked host calls are skipped; the lower-class call of another run goes first.
    expect(order).toEqual(['blocker', 'other']);
    queue.unpark('run-p');
    await release('other');
    await release('parked-1');
    expect(order).toEqual(['blocker', 'other', 'parked-1', 'parked-2']);
    expect(queue.parkedLength).toBe(0);
  });

  it('an unparked call goes back before the calls its user queued while it was held', async () => {
    const { queue, order, enqueue, release } = setup({ concurrency: 1 });
    void enqueue('blocker', 'host');
    await drain();
    void enqueue('held', 'host', 'p', { runId: 'run-p' });
    await drain();
    queue.park('run-p');
    // The same user's call in another (listened-to) run, and another user's call, arrive meanwhile.
    void enqueue('newer', 'host', 'p', { runId: 'run-q' });
    void enqueue('other', 'host', 'o');
    await drain();
    queue.unpark('run-p');
    await release('blocker');
    await release(order.at(-1)!);
    await release(order.at(-1)!);
    // p's oldest call heads its line again; o takes its turn before p's second call.
    expect(order).toEqual(['blocker', 'held', 'other', 'newer']);
  });

  it('a parked call still times out at its deadline and is cleared like any waiting call', async () => {
    const { clock, queue, errors, enqueue } = setup({ concurrency: 1 });
    void enqueue('blocker', 'host');
    await drain();
    queue.park('run-p');
    void enqueue('late', 'host', 'p', { runId: 'run-p', deadline: clock.now() + 1000 });
    void enqueue('cleared', 'host', 'p', { runId: 'run-p' });
    await drain();
    clock.advance(1000);
    await drain();
    expect(errors.get('late')?.code).toBe('queue_timeout');
    expect(queue.clear()).toBe(1);
    await drain();
    expect(errors.get('cleared')?.code).toBe('queue_cleared');
    expect(queue.queueLength).toBe(0);
    expect(queue.parkedLength).toBe(0);
  });
});

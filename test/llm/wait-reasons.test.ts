import type { AgentName } from '../../api/agents/agent-name';
import { ManualClock } from '../../api/clock';
import { InMemoryLimiter } from '../../api/llm/limiter';
import { ProviderRoom } from '../../api/llm/provider-room';
import { RequestQueue, type Slot } from '../../api/llm/request-queue';
import { advance, drain } from './helpers';

/** `queue.waitReasons`: what the scheduler's own state says the waiting calls wait on. */
function setup(
  options: {
    concurrency?: number;
    rpm?: number;
    burstWindowMs?: number;
    aimd?: { concurrency: number; rpm: number };
  } = {},
) {
  const clock = new ManualClock(0);
  const lowered = options.aimd;
  const limiter = new InMemoryLimiter({
    clock,
    maxConcurrent: options.concurrency ?? 10,
    maxRpm: options.rpm ?? 1_000_000,
    maxTpm: 0,
    burstWindowMs: options.burstWindowMs ?? 0,
    ...(lowered ? { aimd: { limits: () => lowered } } : {}),
  });
  const room = new ProviderRoom(options.concurrency ?? 10, clock);
  const queue = new RequestQueue({
    clock,
    limiter,
    room,
    queueMax: 1000,
    priorityOrder: ['reporter', 'critic', 'planner', 'host'],
  });
  const slots: Slot[] = [];
  const call = (agentType: AgentName = 'host') => {
    void queue
      .acquire(
        {
          agentType,
          userId: 'u1',
          conversationId: 'c1',
          estimatedTokens: 1,
          deadline: clock.now() + 600_000,
        },
        new AbortController().signal,
      )
      .then((slot) => slots.push(slot));
  };
  const reasons = () => queue.status().waitReasons;
  return { clock, limiter, queue, slots, call, reasons };
}

describe('why calls wait (queue.waitReasons)', () => {
  test('nothing waits: no reason, and the minute holds no waiting', async () => {
    const { call, reasons, clock } = setup();
    call();
    await advance(clock, 1000);
    expect(reasons()).toMatchObject({
      now: null,
      waitingCalls: 0,
      lastMinute: { totalMs: 0, top: null },
      aimd: null,
    });
    expect(reasons().detail).toBe('No call waits for a slot.');
  });

  test('every in-flight slot taken: in_flight_limit, with the waited call-milliseconds attributed to it', async () => {
    const { call, reasons, clock, slots } = setup({ concurrency: 1 });
    call();
    call();
    call();
    await drain();
    expect(reasons()).toMatchObject({ now: 'in_flight_limit', waitingCalls: 2 });
    expect(reasons().detail).toMatch(/1 of 1 in flight/);
    await advance(clock, 2000);
    slots[0].release();
    await drain();
    expect(reasons()).toMatchObject({ now: 'in_flight_limit', waitingCalls: 1 });
    await advance(clock, 1000);
    // Two calls for 2 s, then one for 1 s.
    expect(reasons().lastMinute).toMatchObject({ totalMs: 5000, top: 'in_flight_limit' });
    expect(reasons().lastMinute.byReason.in_flight_limit).toBe(5000);
    slots[1].release();
    await drain();
    expect(reasons().now).toBeNull();
    // After a minute the waiting has aged out of the window.
    await advance(clock, 70_000, 10_000);
    expect(reasons().lastMinute.totalMs).toBe(0);
  });

  test('a provider Retry-After hold, with far fewer calls in flight than the limit', async () => {
    const { call, reasons, queue, clock } = setup({ concurrency: 50 });
    await queue.holdStarts(3000);
    call();
    await drain();
    expect(reasons()).toMatchObject({ now: 'provider_hold', waitingCalls: 1 });
    expect(reasons().detail).toMatch(/Retry-After holds every start for 3000 ms more/);
    await advance(clock, 3000, 500);
    expect(reasons().now).toBeNull();
    expect(reasons().lastMinute.byReason.provider_hold).toBe(3000);
  });

  test('the start-rate window spreads the minute: calls wait at 10 of 50 in flight', async () => {
    // RPM 60 spread over 10 s windows: at most 10 starts per 10 s.
    const { call, reasons, clock } = setup({ concurrency: 50, rpm: 60, burstWindowMs: 10_000 });
    for (let index = 0; index < 12; index++) call();
    await drain();
    expect(reasons()).toMatchObject({ now: 'start_rate', waitingCalls: 2 });
    expect(reasons().detail).toMatch(/10 of 50 in flight, 10 of 60 starts/);
    await advance(clock, 10_000, 1000);
    expect(reasons().now).toBeNull();
    expect(reasons().lastMinute.top).toBe('start_rate');
  });

  test('the rolling minute used up: rpm_window', async () => {
    const { call, reasons, slots, clock } = setup({ concurrency: 50, rpm: 2 });
    call();
    call();
    call();
    await drain();
    for (const slot of slots) slot.release();
    await drain();
    expect(reasons()).toMatchObject({ now: 'rpm_window', waitingCalls: 1 });
    await advance(clock, 61_000, 1000);
    expect(reasons().now).toBeNull();
  });

  test('AIMD-lowered limits that bind are named, with the configured ones beside them', async () => {
    const { call, reasons } = setup({ concurrency: 50, rpm: 500, aimd: { concurrency: 2, rpm: 250 } });
    call();
    call();
    call();
    await drain();
    expect(reasons()).toMatchObject({
      now: 'aimd',
      aimd: { maxConcurrency: 2, configuredConcurrency: 50, maxRPM: 250, configuredRPM: 500 },
    });
    expect(reasons().detail).toMatch(/AIMD lowered/);
  });

  test('a pause, the priority lanes in dispatch order with their oldest wait, and the chat line room', async () => {
    const { call, reasons, queue, clock } = setup();
    queue.pause();
    call('host');
    call('reporter');
    await advance(clock, 500);
    call('host');
    await advance(clock, 1500);
    expect(reasons()).toMatchObject({ now: 'paused', waitingCalls: 3 });
    expect(reasons().lanes).toEqual([
      { agent: 'reporter', waiting: 1, oldestWaitMs: 2000 },
      { agent: 'critic', waiting: 0, oldestWaitMs: 0 },
      { agent: 'planner', waiting: 0, oldestWaitMs: 0 },
      { agent: 'host', waiting: 2, oldestWaitMs: 2000 },
      // The gateway's classes follow the agents unless LLM_PRIORITY_ORDER places them.
      { agent: 'interactive', waiting: 0, oldestWaitMs: 0 },
      { agent: 'batch', waiting: 0, oldestWaitMs: 0 },
    ]);
    // Calls wait for a slot: the chat line starts no further chat.
    expect(reasons().chatLine).toMatchObject({ hasRoom: false, callsWaiting: 3, freeSlots: 10 });
    queue.resume();
    await drain();
    expect(reasons()).toMatchObject({ now: null, chatLine: { hasRoom: true, callsWaiting: 0 } });
  });
});

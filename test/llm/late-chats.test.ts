import { ManualClock } from '../../api/clock';
import type { AgentName } from '../../api/agents/agent-name';
import { ChatAdmission } from '../../api/llm/admission';
import { InMemoryLimiter } from '../../api/llm/limiter';
import { LineMeter } from '../../api/llm/line-meter';
import { ProviderRoom } from '../../api/llm/provider-room';
import { RequestQueue, type Slot } from '../../api/llm/request-queue';
import { RunLedger, type RunLedgerOptions } from '../../api/llm/run-ledger';
import { drain } from './helpers';

/**
 * Late chats (admission started them with less time left than recent chats took): their calls go
 * before every class, earliest deadline first, and the ledger measures what admission's late
 * start counts on — each chat's time blocked in the queue, and the gaps between starts.
 */
function setup(callsPerChat?: number) {
  const clock = new ManualClock(0);
  const ledger = new RunLedger({ clock, maxAgeMs: 60_000, callsPerChat: () => callsPerChat });
  const limiter = new InMemoryLimiter({
    clock,
    maxConcurrent: 1,
    maxRpm: 1_000_000,
    maxTpm: 0,
    burstWindowMs: 0,
  });
  const queue = new RequestQueue({
    clock,
    limiter,
    queueMax: 100,
    priorityOrder: ['host', 'planner', 'critic', 'reporter'],
    ledger,
  });
  const order: string[] = [];
  const slots = new Map<string, Slot>();
  const enqueue = (label: string, agentType: AgentName, runId: string) =>
    void queue
      .acquire(
        {
          agentType,
          userId: runId,
          conversationId: runId,
          runId,
          estimatedTokens: 1,
          deadline: clock.now() + 600_000,
        },
        new AbortController().signal,
      )
      .then((slot) => {
        order.push(label);
        slots.set(label, slot);
      });
  const release = async (label: string) => {
    slots.get(label)!.release();
    await drain();
  };
  return { clock, ledger, queue, order, enqueue, release };
}

describe('late chats in the request queue', () => {
  test("a late chat's reporter call goes before every class; among late chats, the earliest deadline first", async () => {
    const { ledger, order, enqueue, release } = setup();
    ledger.chatStarted('normal');
    ledger.chatStarted('late-soon', 20_000);
    ledger.chatStarted('late-later', 30_000);
    enqueue('blocker', 'host', 'normal');
    await drain();
    enqueue('host', 'host', 'normal');
    enqueue('later-reporter', 'reporter', 'late-later');
    enqueue('soon-critic', 'critic', 'late-soon');
    await drain();
    for (const label of ['blocker', 'soon-critic', 'later-reporter']) await release(label);
    expect(order).toEqual(['blocker', 'soon-critic', 'later-reporter', 'host']);
    expect(ledger.lateRunning()).toBe(2);
    ledger.chatEnded('late-soon');
    expect(ledger.lateRunning()).toBe(1);
  });

  test('the status still counts late calls in their class', async () => {
    const { ledger, queue, enqueue } = setup();
    ledger.chatStarted('normal');
    ledger.chatStarted('late', 10_000);
    enqueue('blocker', 'host', 'normal');
    await drain();
    enqueue('late-reporter', 'reporter', 'late');
    await drain();
    const status = queue.status();
    expect(status.queueLength).toBe(1);
    expect(status.byAgent.reporter.queued).toBe(1);
  });
});

describe('chats falling behind', () => {
  /** A ledger whose recent chats made at most `callsPerChat` calls (the 99th percentile; undefined: not measured). */
  function behindSetup(callsPerChat: number | undefined) {
    const clock = new ManualClock(0);
    const ledger = new RunLedger({ clock, maxAgeMs: 60_000, callsPerChat: () => callsPerChat });
    return { clock, ledger };
  }

  test('a chat whose own pace would finish past its deadline goes late at its next call; one on pace keeps its class', () => {
    const { clock, ledger } = behindSetup(4);
    // Both started at 0 with a 60 s deadline; each has made one call.
    ledger.chatStarted('slow', undefined, 60_000);
    ledger.chatStarted('steady', undefined, 60_000);
    for (const run of ['slow', 'steady']) {
      expect(ledger.lateDeadline(run)).toBeUndefined();
      ledger.callQueued(run);
      ledger.callStarted(run, 'default', false);
      ledger.callEnded(run);
    }
    // 14 s in: one call per 14 s, three more to make → 14 + 3 × 14 = 56 s, inside 60 s.
    clock.advance(14_000);
    expect(ledger.lateDeadline('steady')).toBeUndefined();
    // 16 s in: one call per 16 s → 16 + 3 × 16 = 64 s, past 60 s: late from this call on.
    clock.advance(2_000);
    expect(ledger.lateDeadline('slow')).toBe(60_000);
    expect(ledger.lateRunning()).toBe(1);
    // Once late, it stays late (and counts once).
    expect(ledger.lateDeadline('slow')).toBe(60_000);
    expect(ledger.lateRunning()).toBe(1);
    ledger.chatEnded('slow');
    expect(ledger.lateRunning()).toBe(0);
  });

  test("a call of a class whose calls wait long counts that wait: on pace for a host call, behind for a reporter's", () => {
    const { clock, ledger } = behindSetup(4);
    // Recent reporter calls waited 8 s (ten of them: enough to trust), host calls nothing.
    for (let index = 0; index < 10; index++) {
      ledger.callWaited('reporter', 8_000);
      ledger.callWaited('host', 0);
    }
    ledger.chatStarted('chat', undefined, 60_000);
    ledger.callStarted('chat', 'default', false);
    clock.advance(14_000);
    // One call per 14 s, three to go: 14 + 3 × 14 = 56 s; a reporter call first waits 8 s: 64 s.
    expect(ledger.lateDeadline('chat', 'host')).toBeUndefined();
    expect(ledger.lateDeadline('chat', 'reporter')).toBe(60_000);
  });

  test('nothing moves late before a call was made, without a deadline, or before calls per chat were measured', () => {
    const measured = behindSetup(4);
    measured.ledger.chatStarted('fresh', undefined, 1_000);
    measured.clock.advance(5_000);
    expect(measured.ledger.lateDeadline('fresh')).toBeUndefined();
    measured.ledger.chatStarted('no-deadline');
    measured.ledger.callStarted('no-deadline', 'default', false);
    measured.clock.advance(60_000);
    expect(measured.ledger.lateDeadline('no-deadline')).toBeUndefined();

    const cold = behindSetup(undefined);
    cold.ledger.chatStarted('chat', undefined, 1_000);
    cold.ledger.callStarted('chat', 'default', false);
    cold.clock.advance(5_000);
    expect(cold.ledger.lateDeadline('chat')).toBeUndefined();
  });
});

describe('chats falling behind while a call waits', () => {
  /**
   * A chat with `deadline` made one call at 0 (recent chats made up to four); 10 s in, its
   * reporter call queues behind a blocker holding the only slot, beside another chat's host call
   * (whose class ranks first); then 6 s pass.
   */
  async function reporterWaitsBehindHost(deadline: number) {
    const context = setup(4);
    const { clock, ledger, enqueue } = context;
    ledger.chatStarted('other');
    ledger.chatStarted('chat', undefined, deadline);
    enqueue('blocker', 'host', 'other');
    await drain();
    ledger.callStarted('chat', 'default', false);
    ledger.callEnded('chat');
    clock.advance(10_000);
    enqueue('reporter', 'reporter', 'chat');
    enqueue('host', 'host', 'other');
    await drain();
    // Queued on pace: 10 + 3 × 10 = 40 s, inside either deadline.
    expect(ledger.lateRunning()).toBe(0);
    clock.advance(6_000);
    await drain();
    return context;
  }

  test('a call queued on pace that then waits until its chat is behind goes late and goes first', async () => {
    // At 16 s the pace is one call per 16 s: 16 + 3 × 16 = 64 s, past the 60 s deadline. The check
    // while calls wait moves the waiting call late, ahead of every class.
    const { ledger, order, release } = await reporterWaitsBehindHost(60_000);
    expect(ledger.lateRunning()).toBe(1);
    await release('blocker');
    expect(order).toEqual(['blocker', 'reporter']);
    await release('reporter');
    expect(order).toEqual(['blocker', 'reporter', 'host']);
  });

  test('a call whose chat keeps its pace stays in its class', async () => {
    const { ledger, order, release } = await reporterWaitsBehindHost(600_000);
    expect(ledger.lateRunning()).toBe(0);
    await release('blocker');
    expect(order).toEqual(['blocker', 'host']);
  });
});

describe('the run ledger', () => {
  test('a chat is blocked only while a call of its waits and none is in flight', async () => {
    const { clock, ledger, enqueue, release } = setup();
    ledger.chatStarted('other');
    ledger.chatStarted('chat');
    enqueue('other', 'host', 'other');
    await drain();
    enqueue('first', 'host', 'chat'); // waits 1 s behind `other`: blocked
    await drain();
    clock.advance(1_000);
    await release('other');
    enqueue('parallel', 'planner', 'chat'); // waits beside `first` in flight: not blocked
    await drain();
    clock.advance(500);
    await release('first'); // now `parallel` starts at once
    clock.advance(300);
    await release('parallel');
    clock.advance(200); // a tool, say: not blocked
    expect(ledger.chatEnded('chat')).toEqual({ blockedMs: 1_000, calls: 2 });
  });

  test('start gaps count only while calls waited through them, and only once ten were seen', async () => {
    const { clock, ledger, enqueue, release } = setup();
    ledger.chatStarted('r');
    enqueue('a', 'host', 'r');
    await drain();
    clock.advance(10_000); // idle: `a` runs alone, nothing waits
    const labels = Array.from({ length: 12 }, (_, index) => `call-${index}`);
    for (const label of labels) enqueue(label, 'host', 'r');
    await drain();
    clock.advance(400);
    await release('a'); // call-0 starts; the others still wait
    // Ten gaps follow, 300 ms and 500 ms in turn, each with calls still waiting.
    for (let index = 0; index < 10; index++) {
      expect(ledger.startGapMs(0.95)).toBeUndefined();
      clock.advance(index % 2 === 0 ? 300 : 500);
      await release(labels[index]);
    }
    // The 10.4 s before call-0's start began with nothing waiting (a started alone): not a gap a
    // waiting call sat through, so it is not kept.
    expect(ledger.startGapMs(0.95)).toBe(500);
    expect(ledger.startGapMs(0.5)).toBe(300);
  });
});

/** `count` starts of this instance's, `ms` apart, calls waiting through each gap. */
function startsApart(clock: ManualClock, ledger: RunLedger, count: number, ms: number, runId?: string): void {
  for (let call = 0; call < count; call++) {
    clock.advance(ms);
    ledger.callStarted(runId, 'default', true);
  }
}

/** The line now moves fast: a chat's 300 starts, 100 ms apart, while calls waited. */
function lineMovesFast(clock: ManualClock, ledger: RunLedger): void {
  ledger.chatStarted('busy');
  startsApart(clock, ledger, 300, 100, 'busy');
  ledger.chatEnded('busy');
}

describe("a cluster's start gaps", () => {
  test("once the cluster's starts are heard, they set the gaps and this instance's own add none", () => {
    const clock = new ManualClock(0);
    const ledger = new RunLedger({ clock, maxAgeMs: 600_000 });
    // Alone, this instance would measure a gap of 900 ms between its own starts.
    startsApart(clock, ledger, 11, 900);
    expect(ledger.startGapMs(0.5)).toBe(900);
    // Three instances start calls 300 ms apart on Redis's clock, calls waiting throughout.
    const redisAt = 5_000_000;
    for (let start = 0; start < 11; start++) {
      clock.advance(300);
      ledger.clusterStarted('default', redisAt + start * 300, 1, true);
      // This instance's own start (every third) counts no gap of its own any more.
      if (start % 3 === 0) ledger.callStarted(undefined, 'default', true);
    }
    expect(ledger.startGapMs(0.5)).toBe(300);
    expect(ledger.startGapMs(0.95)).toBe(300);
  });

  test("with Redis gone (no start of the cluster's heard any more) this instance measures its own again", () => {
    const clock = new ManualClock(0);
    const ledger = new RunLedger({ clock, maxAgeMs: 600_000 });
    for (let start = 0; start < 12; start++) {
      clock.advance(300);
      ledger.clusterStarted('default', 1_000_000 + start * 300, 1, true);
    }
    expect(ledger.startGapMs(0.5)).toBe(300);
    // The fail-safe starts calls alone, 700 ms apart: ten unheard starts are still the cluster's
    // (an announcement may trail its start), then this instance's own gaps count.
    startsApart(clock, ledger, 22, 700);
    expect(ledger.startGapMs(0.5)).toBe(700);
    // Redis is back: the cluster's gaps again, from their first.
    ledger.clusterStarted('default', 2_000_000, 1, true);
    expect(ledger.startGapMs(0.5)).toBeUndefined();
  });

  test('a gap counts only while calls waited; a batch adds no gap after its first start', () => {
    const clock = new ManualClock(0);
    const ledger = new RunLedger({ clock, maxAgeMs: 600_000 });
    ledger.clusterStarted('default', 1_000, 1, false); // nothing waits after it
    ledger.clusterStarted('default', 60_000, 1, true); // the 59 s before it were idle: no gap
    ledger.clusterStarted('default', 60_400, 4, true); // a gap of 400 ms, then three of 0 ms
    for (let start = 1; start <= 6; start++) ledger.clusterStarted('default', 60_400 + start * 400, 1, true);
    expect(ledger.startGapMs(0.5)).toBe(400);
    expect(ledger.startGapMs(0.2)).toBe(0);
    // News older than the last start (a reordering) is not a negative gap.
    ledger.clusterStarted('default', 50_000, 1, true);
    expect(ledger.startGapMs(0.05)).toBe(0);
    expect(ledger.startGapMs(0.95)).toBe(400);
  });
});

describe('answers cached for an instant', () => {
  test('a gap recorded at the same instant changes the next answer', () => {
    const clock = new ManualClock(0);
    const ledger = new RunLedger({ clock, maxAgeMs: 600_000 });
    startsApart(clock, ledger, 11, 100);
    expect(ledger.startGapMs(0.05)).toBe(100);
    // Another start at this very instant: a gap of 0 ms, and the shortest gap is now 0.
    ledger.callStarted(undefined, 'default', true);
    expect(ledger.startGapMs(0.05)).toBe(0);
    // Asked again at once with nothing new: the same answer (computed once per instant).
    expect(ledger.startGapMs(0.05)).toBe(0);
  });
});

describe('admission at the head: start, start late, or refuse', () => {
  /** Twenty chats measured: each ran 10 s, of which 8 s blocked in the queue (2 s of service, 4 calls). */
  function measured(cluster: Partial<RunLedgerOptions> = {}) {
    const clock = new ManualClock(0);
    const ledger = new RunLedger({ clock, maxAgeMs: 600_000, ...cluster });
    const meter = new LineMeter({ clock, maxAgeMs: 600_000 });
    const admission = new ChatAdmission({
      maxRunning: 100,
      chatTimeoutMs: 60_000,
      enabled: true,
      room: new ProviderRoom(10, clock),
      meter,
      ledger,
    });
    for (let index = 0; index < 20; index++) {
      const runId = `chat-${index}`;
      admission.started(runId, false);
      ledger.callQueued(runId);
      clock.advance(8_000);
      // Starts while another call waits: the gaps between starts are 8 s here (a slow line).
      for (let call = 0; call < 4; call++) ledger.callStarted(runId, 'default', true);
      for (let call = 0; call < 4; call++) ledger.callEnded(runId);
      clock.advance(2_000);
      admission.ended(runId, true);
    }
    return { clock, ledger, admission };
  }

  test('a late start needs the 99th percentile of service time plus, per call, a late call’s wait', () => {
    const { clock, ledger, admission } = measured();
    const now = clock.now();
    // The 99th percentile of run time is 10 s: with 10 s left a chat starts as usual.
    expect(admission.checkStart(now + 10_000, now)).toEqual({ start: true });
    // Service 2 s + 4 calls × (the start gaps: 8 s, and 0 s between the calls of one chat) — the
    // 95th percentile gap is 8 s here, so a late chat needs 2 + 4 × 8 = 34 s: none fits in < 10 s.
    const refused = admission.checkStart(now + 9_000, now);
    expect(refused.start).toBe(false);
    expect(ledger.lateRunning()).toBe(0);
  });

  test('with short start gaps a head short of time starts late, and each late chat running counts for the next', () => {
    const { clock, ledger, admission } = measured();
    lineMovesFast(clock, ledger);
    const now = clock.now();
    // A late chat: 2 s of service + 4 calls × 100 ms = 2.4 s.
    const first = admission.checkStart(now + 3_000, now);
    expect(first).toEqual({ start: true, lateDeadline: now + 3_000 });
    admission.started('late-1', true, now + 3_000);
    // With one late chat ahead, the next needs 2 + 4 × 2 × 0.1 = 2.8 s: 3 s left is enough, 2.7 s is not.
    expect(admission.checkStart(now + 3_000, now)).toEqual({ start: true, lateDeadline: now + 3_000 });
    expect(admission.checkStart(now + 2_700, now).start).toBe(false);
  });

  test('a chat started on time waits behind the late chats running too: with one, a head 10.2 s from its deadline starts late', () => {
    const { clock, ledger, admission } = measured();
    lineMovesFast(clock, ledger);
    const now = clock.now();
    // Recent chats ran 10 s at the 99th percentile: with nothing late running, 10.2 s is enough.
    expect(admission.checkStart(now + 10_200, now)).toEqual({ start: true });
    admission.started('late-1', true, now + 3_000);
    // One late chat goes first at each of 4 calls, 100 ms apart: 10 s + 0.4 s no longer fits, so
    // the head starts late itself (2 s + 4 × 100 ms + 0.4 s = 2.8 s).
    expect(admission.checkStart(now + 10_200, now)).toEqual({ start: true, lateDeadline: now + 10_200 });
    expect(admission.checkStart(now + 10_400, now)).toEqual({ start: true });
  });

  test('starts that come in batches: each late chat ahead counts a mean gap per call, not the median (0)', () => {
    const { clock, ledger, admission } = measured();
    // The quota grants 4 starts at once every 400 ms (a spreading sub-window reopening): gaps of
    // 400, 0, 0, 0 ms — median 0, mean 100, 95th percentile 400.
    ledger.clusterStarted('default', 1_000_000, 1, true);
    for (let batch = 1; batch <= 20; batch++) {
      clock.advance(400);
      ledger.clusterStarted('default', 1_000_000 + batch * 400, 4, true);
    }
    expect(ledger.startGapMs(0.5)).toBe(0);
    expect(ledger.meanStartGapMs()).toBe(100);
    const now = clock.now();
    // Alone: 2 s of service + 4 calls × 400 ms = 3.6 s.
    expect(admission.checkStart(now + 3_600, now)).toEqual({ start: true, lateDeadline: now + 3_600 });
    admission.started('late-1', true, now + 3_600);
    // Behind it: + 4 calls × 1 × 100 ms = 4 s. With the median every late chat ahead read as free.
    expect(admission.checkStart(now + 3_900, now).start).toBe(false);
    expect(admission.checkStart(now + 4_000, now)).toEqual({ start: true, lateDeadline: now + 4_000 });
  });

  test('a late chat ahead counts only the calls it may still make', () => {
    const { clock, ledger, admission } = measured();
    lineMovesFast(clock, ledger);
    const now = clock.now();
    admission.started('late-1', true, now + 3_000);
    // Fresh, it may make all 4 calls ahead of the next: 2 s + 4 × 100 ms + 4 × 100 ms = 2.8 s.
    expect(admission.checkStart(now + 2_700, now).start).toBe(false);
    // Three of its calls made: one left ahead, 2 s + 4 × 100 ms + 100 ms = 2.5 s.
    for (let call = 0; call < 3; call++) {
      ledger.callQueued('late-1');
      ledger.callStarted('late-1', 'default', false);
      ledger.callEnded('late-1');
    }
    expect(ledger.lateCallsLeft(4)).toBe(1);
    expect(admission.checkStart(now + 2_400, now).start).toBe(false);
    expect(admission.checkStart(now + 2_500, now)).toEqual({ start: true, lateDeadline: now + 2_500 });
  });

  test('without room, the head starts only at its last chance: a late chat still fits now, no longer at the next look', () => {
    const { clock, ledger, admission } = measured();
    lineMovesFast(clock, ledger);
    const at = clock.now();
    // A late chat needs 2.4 s. 3.5 s left: it could still start at the next look, 1 s on — it waits.
    expect(admission.lastChanceStart(0, at + 3_500, at, at + 1_000)).toBeUndefined();
    // 3 s left: after the next look only 2 s would be — now is its last chance.
    expect(admission.lastChanceStart(0, at + 3_000, at, at + 1_000)).toBeDefined();
    // 2.3 s left: too late even now (the deadline check refuses it).
    expect(admission.lastChanceStart(0, at + 2_300, at, at + 1_000)).toBeUndefined();
    // A late chat running counts ahead (2.8 s now: 2.5 s left is too short), and the stream cap binds.
    admission.started('late-1', true, at + 3_000);
    expect(admission.lastChanceStart(0, at + 2_500, at, at + 1_000)).toBeUndefined();
    expect(admission.lastChanceStart(0, at + 3_000, at, at + 1_000)).toBeDefined();
    expect(admission.lastChanceStart(100, at + 3_000, at, at + 1_000)).toBeUndefined();
    expect(admission.checkStart(at + 3_000, at)).toEqual({ start: true, lateDeadline: at + 3_000 });
  });

  test('no last-chance start with admission off, without a deadline, or cold', () => {
    const clock = new ManualClock(0);
    const options = {
      maxRunning: 100,
      chatTimeoutMs: 60_000,
      room: new ProviderRoom(10, clock),
      meter: new LineMeter({ clock, maxAgeMs: 600_000 }),
      ledger: new RunLedger({ clock, maxAgeMs: 600_000 }),
    };
    const cold = new ChatAdmission({ ...options, enabled: true });
    expect(cold.lastChanceStart(0, 1_000, 0, 1_000)).toBeUndefined();
    const { clock: measuredClock, ledger, admission } = measured();
    lineMovesFast(measuredClock, ledger);
    const at = measuredClock.now();
    expect(admission.lastChanceStart(0, undefined, at, at + 1_000)).toBeUndefined();
    const off = new ChatAdmission({ ...options, enabled: false });
    expect(off.lastChanceStart(0, 2_500, 0, 1_000)).toBeUndefined();
  });

  test("in a cluster the other instances' late chats count ahead too, and this one's are told", () => {
    // Two late chats elsewhere, neither has started a call yet.
    let elsewhere = [0, 0];
    const told: string[] = [];
    const { clock, ledger, admission } = measured({
      lateElsewhere: () => elsewhere,
      onLate: (runId, deadline, calls) => told.push(`late ${runId} ${deadline} ${calls}`),
      onLateCall: (runId) => told.push(`call ${runId}`),
      onLateEnded: (runId) => told.push(`ended ${runId}`),
    });
    lineMovesFast(clock, ledger);
    const now = clock.now();
    // Two late chats elsewhere: 2 s + 4 calls × (100 ms + 2 × 100 ms) = 3.2 s; 3 s left is short.
    expect(ledger.lateRunning()).toBe(2);
    expect(admission.checkStart(now + 3_000, now).start).toBe(false);
    expect(admission.checkStart(now + 3_200, now)).toEqual({ start: true, lateDeadline: now + 3_200 });
    admission.started('late-here', true, now + 3_200);
    expect(ledger.lateRunning()).toBe(3);
    // The two elsewhere have started 3 of their 4 calls each: 2 + 4 × 0.1 + (4 + 1 + 1) × 0.1 = 3 s.
    elsewhere = [3, 3];
    expect(admission.checkStart(now + 2_900, now).start).toBe(false);
    expect(admission.checkStart(now + 3_000, now)).toEqual({ start: true, lateDeadline: now + 3_000 });
    // They end: only this instance's late chat is left ahead of the next.
    elsewhere = [];
    expect(admission.checkStart(now + 2_800, now)).toEqual({ start: true, lateDeadline: now + 2_800 });
    ledger.callQueued('late-here');
    ledger.callStarted('late-here', 'default', false);
    admission.ended('late-here', true);
    expect(told).toEqual([`late late-here ${now + 3_200} 0`, 'call late-here', 'ended late-here']);
  });
});

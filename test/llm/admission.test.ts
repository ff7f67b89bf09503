import fc from 'fast-check';
import { ManualClock, flushMicrotasks } from '../../api/clock';
import type { AppError } from '../../api/errors';
import { ChatAdmission, type AdmissionOptions } from '../../api/llm/admission';
import { LineMeter } from '../../api/llm/line-meter';
import { ProviderRoom } from '../../api/llm/provider-room';
import { RunLedger } from '../../api/llm/run-ledger';
import { Run } from '../../api/streaming/run';
import { SseLimiter } from '../../api/streaming/sse-limiter';
import { startTestTroupe } from '../helpers/test-server';

/** A run as ChatService makes it: `run` first, its abort reason as its `error` event. */
function makeRun(): { run: Run; start: jest.Mock<Promise<void>, []> } {
  const run = new Run('c', 'u', 100);
  run.emit('run', { runId: run.id, conversationId: run.conversationId });
  run.signal.addEventListener('abort', () =>
    run.emit('error', (run.signal.reason as AppError).toBody().error),
  );
  return { run, start: jest.fn(async () => undefined) };
}

function finish(run: Run): void {
  run.emit('done', {
    conversationId: 'c',
    messageId: 'm',
    answer: 'ok',
    usage: { promptTokens: 1, completionTokens: 1 },
    timings: { totalMs: 1, queueWaitMs: 0 },
  });
}

function errorOf(run: Run): { code: string; retryAfterMs?: number } | undefined {
  const last = run.events().at(-1);
  return last?.event === 'error' ? last.data : undefined;
}

function setup(overrides: Partial<AdmissionOptions> = {}, concurrency = 2) {
  const clock = new ManualClock(0);
  const room = new ProviderRoom(concurrency, clock);
  const meter = new LineMeter({ clock, maxAgeMs: 60_000 });
  const ledger = new RunLedger({ clock, maxAgeMs: 60_000 });
  const admission = new ChatAdmission({
    maxRunning: 100,
    chatTimeoutMs: 60_000,
    enabled: true,
    room,
    meter,
    ledger,
    ...overrides,
  });
  const line = new SseLimiter({
    clock,
    admission,
    maxConcurrent: overrides.maxRunning ?? 100,
    queueMax: 10_000,
    tokenGraceMs: 5000,
    resumeGraceMs: 5000,
  });
  /** Admits a chat as the chat route does: the line's arrival check, then the line. */
  const arrive = () => {
    const chat = makeRun();
    line.assertRoom();
    line.admit(chat.run, chat.start, admission.deadlineOf(clock.now()));
    return chat;
  };
  return { clock, room, meter, ledger, admission, line, arrive };
}

/**
 * What a late start is measured on (admission.ts, lateRunMs): ten completed chats' service time
 * (`serviceMs`, one call each) and ten gaps of `gapMs` between starts while calls waited.
 */
function measureLateRun(
  meter: LineMeter,
  ledger: RunLedger,
  serviceMs: number,
  gapMs: number,
  now: number,
): void {
  for (let index = 0; index < 10; index++) meter.servedElsewhere({ serviceMs, calls: 1 });
  for (let index = 0; index <= 10; index++)
    ledger.clusterStarted('default', now - (10 - index) * gapMs, 1, true);
}

describe('admission: who starts (the closed loop on the provider room)', () => {
  test('cold, a burst starts as many chats as there are slots; the rest wait, none is refused', () => {
    const { line, arrive } = setup({}, 3);
    const chats = Array.from({ length: 50 }, arrive);
    expect(chats.filter((chat) => chat.start.mock.calls.length > 0)).toHaveLength(3);
    expect(line.stats()).toMatchObject({ active: 3, waiting: 47, refused: 0 });
  });

  test('a slot freed between two calls of a running chat is kept for it; a chat ending lets the next start', async () => {
    const { room, line, arrive } = setup({}, 2);
    const [first, second, third] = [arrive(), arrive(), arrive()];
    expect(line.stats()).toMatchObject({ active: 2, waiting: 1 });
    // Both running chats have a call in flight: no slot free, nothing waits.
    room.callQueued(first.run.id);
    room.callQueued(second.run.id);
    room.update(0, 0);
    expect(third.start).not.toHaveBeenCalled();
    // The first chat's call ends: its slot is free, but its next call is on its way.
    room.callEnded(first.run.id);
    room.update(0, 1);
    expect(third.start).not.toHaveBeenCalled();
    // The first chat ends instead: its slot is the third's.
    finish(first.run);
    await flushMicrotasks();
    expect(third.start).toHaveBeenCalled();
    expect(line.stats()).toMatchObject({ active: 2, waiting: 0 });
  });

  test('a call waiting for a slot holds the line; the queue emptying with a slot free starts the next chat', () => {
    const { room, line, arrive } = setup({}, 3);
    const chats = [arrive(), arrive(), arrive()];
    for (const chat of chats) room.callQueued(chat.run.id);
    // Two calls in flight, one waits (AIMD lowered the limit to 2, say): no room.
    room.update(1, 0);
    const fourth = arrive();
    expect(fourth.start).not.toHaveBeenCalled();
    // The limit is back at 3 and the waiting call started: a slot is free and nothing waits.
    room.update(0, 1);
    expect(fourth.start).toHaveBeenCalled();
    expect(line.stats()).toMatchObject({ active: 4, waiting: 0 });
  });

  test('RPM-bound: calls waiting on the rate window stop new chats although slots are free', () => {
    const { room, line, arrive } = setup({}, 50);
    const chats = Array.from({ length: 60 }, arrive);
    expect(line.stats()).toMatchObject({ active: 50, waiting: 10 });
    for (const chat of chats.slice(0, 50)) room.callQueued(chat.run.id);
    // Ten calls started, forty wait for their minute's starts: no more chats although 40 slots are free.
    room.update(40, 40);
    expect(line.stats()).toMatchObject({ active: 50, waiting: 10 });
    // The window let them all start: 10 slots free, nothing waits.
    room.update(0, 10);
    expect(line.stats().active).toBe(60);
  });

  test('in a cluster of three, a line starts a third of the free slots at once; alone it fills them in rounds', () => {
    const clock = new ManualClock(0);
    let instances = 3;
    const room = new ProviderRoom(9, clock, () => instances);
    const admission = new ChatAdmission({
      maxRunning: 100,
      chatTimeoutMs: 60_000,
      enabled: true,
      room,
      meter: new LineMeter({ clock, maxAgeMs: 60_000 }),
      ledger: new RunLedger({ clock, maxAgeMs: 60_000 }),
    });
    const line = new SseLimiter({
      clock,
      admission,
      maxConcurrent: 100,
      queueMax: 100,
      tokenGraceMs: 5000,
      resumeGraceMs: 5000,
    });
    const started: string[] = [];
    for (let index = 0; index < 20; index++) {
      const chat = makeRun();
      line.admit(chat.run, async () => void started.push(chat.run.id), admission.deadlineOf(clock.now()));
    }
    // The queue reports the cluster's 9 free slots: every instance reads them, so each starts 3
    // (the first started at once, since none of this one's ran; then two more up to 9 / 3).
    room.update(0, 9);
    expect(room.explain()).toMatchObject({ freeSlots: 9, freeSlotsHere: 3 });
    expect(line.stats().active).toBe(3);
    // Their calls took 3 slots; the others' lines took theirs too: nothing free, nothing starts.
    for (const id of started) room.callQueued(id);
    room.update(0, 0);
    expect(line.stats().active).toBe(3);
    // Alone in the cluster, the line takes all that is free.
    instances = 1;
    room.update(0, 4);
    expect(line.stats().active).toBe(7);
  });

  test('SSE_MAX_CONCURRENT still bounds the running chats', () => {
    const { line, arrive } = setup({ maxRunning: 2 }, 10);
    Array.from({ length: 5 }, arrive);
    expect(line.stats()).toMatchObject({ active: 2, waiting: 3 });
  });

  test('with admission off, chats start whenever a stream slot is free and are never refused for time', async () => {
    const { room, line, arrive, clock } = setup({ enabled: false, maxRunning: 3 }, 1);
    room.update(5, -4);
    const chats = Array.from({ length: 5 }, arrive);
    expect(line.stats()).toMatchObject({ active: 3, waiting: 2 });
    clock.advance(59_000);
    for (const chat of chats.slice(0, 3)) finish(chat.run);
    await flushMicrotasks();
    expect(line.stats()).toMatchObject({ active: 2, waiting: 0, refused: 0 });
  });
});

describe('the chat line and the operator', () => {
  test('DELETE /api/queue/clear ends the chats waiting in the line with queue_cleared; running ones go on', () => {
    const { line, arrive } = setup({ maxRunning: 1 }, 10);
    const chats = Array.from({ length: 4 }, arrive);
    expect(line.clearWaiting()).toBe(3);
    expect(chats.slice(1).map((chat) => errorOf(chat.run)?.code)).toEqual([
      'queue_cleared',
      'queue_cleared',
      'queue_cleared',
    ]);
    expect(errorOf(chats[0].run)).toBeUndefined();
    expect(line.stats()).toMatchObject({ active: 1, waiting: 0, refused: 0, refusedWaiting: 0 });
  });
});

describe('admission: who is refused (only on what was measured)', () => {
  /** Runs one chat at a time through a line of `waiting` chats: each takes runMs. Returns them. */
  async function measureSlowLine(runMs: number, waiting: number) {
    const context = setup({ maxRunning: 1 }, 10);
    const chats = Array.from({ length: waiting }, context.arrive);
    for (let index = 0; index < 3; index++) {
      context.clock.advance(runMs);
      finish(chats[index].run);
      await flushMicrotasks();
    }
    return { ...context, chats };
  }

  test('a long line on a cold server: every chat waits, none is refused on a guess', () => {
    const { clock, line, arrive } = setup({ maxRunning: 1 }, 10);
    Array.from({ length: 500 }, arrive);
    clock.advance(5_000);
    expect(line.stats()).toMatchObject({ waiting: 499, refused: 0 });
  });

  test('measured, a new chat that cannot start in time is refused at once with Retry-After', async () => {
    // Three chats went through the line, one every 10 s (drain counted generously: 3 per 20 s).
    const { line, arrive } = await measureSlowLine(10_000, 4);
    expect(line.stats()).toMatchObject({ active: 1, waiting: 0 });
    // Three starts leave the rate uncertain: the line is taken to drain up to (3 + 2 + 2·√4) / 3 = 3
    // times faster, one chat per 2.2 s. Thirty arrive at once: the p-th would finish
    // (p − 1) × 2.2 s + 10 s (the median run) from now, within 60 s for p ≤ 23.
    const refusals: AppError[] = [];
    for (let index = 0; index < 30; index++) {
      try {
        arrive();
      } catch (error) {
        refusals.push(error as AppError);
      }
    }
    expect(line.stats()).toMatchObject({ waiting: 23, refused: 7 });
    for (const refusal of refusals) {
      expect(refusal).toMatchObject({ code: 'overloaded', status: 503 });
      expect(refusal.retryAfterMs).toBeGreaterThanOrEqual(1000);
    }
  });

  test('measured, a waiting chat is told overloaded once even starting now could not finish in time — not for its place in the line', async () => {
    const { clock, line, chats, meter, ledger } = await measureSlowLine(10_000, 12);
    // At 30 s chats[3] runs and eight wait; at one start per 10 s the last of them would start at
    // 100 s, past the 60 s deadline. Yet the drain rate measured over three starts is no certainty
    // (a burst's tail drains faster than its middle): none is refused for its place.
    clock.advance(1_000);
    expect(line.stats()).toMatchObject({ waiting: 8, refusedWaiting: 0 });
    // What a chat started now would take (the late run time) is not measured yet: at 52 s, with
    // a median run of 10 s, they still wait.
    clock.advance(21_000);
    expect(line.stats()).toMatchObject({ waiting: 8, refusedWaiting: 0 });
    // Measured (10 s of service, 50 ms between starts): even a chat started now would finish after
    // 60 s. The next check (every second) tells them.
    measureLateRun(meter, ledger, 10_000, 50, clock.now());
    clock.advance(1_000);
    const refused = chats.filter((chat) => errorOf(chat.run)?.code === 'overloaded');
    expect(refused).toHaveLength(8);
    for (const chat of refused) {
      expect(chat.start).not.toHaveBeenCalled();
      expect(errorOf(chat.run)?.retryAfterMs).toBeGreaterThanOrEqual(1000);
    }
    expect(line.stats()).toMatchObject({ refused: 0, refusedWaiting: 8 });
  });

  /**
   * One slot, held by a running chat whose next call waits for it (no room), at 20 s; ten chats
   * measured, each ran 20 s of which 10 s waited for a slot, and starts `gapMs` apart.
   */
  function lineWithoutRoom(gapMs: number) {
    const context = setup({}, 1);
    const { clock, room, meter, ledger, arrive } = context;
    const first = arrive();
    for (let index = 0; index < 10; index++) meter.runStarted(`past-${index}`);
    clock.advance(20_000);
    for (let index = 0; index < 10; index++)
      meter.runEnded(`past-${index}`, true, { blockedMs: 10_000, calls: 1 });
    measureLateRun(meter, ledger, 10_000, gapMs, clock.now());
    room.callQueued(first.run.id);
    room.update(1, 0);
    return context;
  }

  test('a waiting chat the provider has no room for starts late at its last chance instead of being refused', async () => {
    const { clock, ledger, line, arrive } = lineWithoutRoom(50);
    // The next chat (deadline 80 s) waits.
    const second = arrive();
    expect(second.start).not.toHaveBeenCalled();
    // A late start needs 10 s of service + one call's gap (50 ms). At 68 s it could still wait a
    // look (1 s) longer; at 69 s it could not: it starts, as a late chat.
    clock.advance(48_000);
    expect(second.start).not.toHaveBeenCalled();
    clock.advance(1_000);
    expect(second.start).toHaveBeenCalled();
    expect(ledger.lateRunning()).toBe(1);
    expect(line.stats()).toMatchObject({ active: 2, waiting: 0, refusedWaiting: 0 });
  });

  test("each chat started at its last chance counts ahead of the next: a burst's tail does not all start at once", async () => {
    // Starts 1 s apart: a late start needs 10 s + 1 s, and 1 s more per late chat ahead.
    const { clock, ledger, line, arrive } = lineWithoutRoom(1_000);
    const [second, third] = [arrive(), arrive()];
    // At 69 s (deadline 80 s) the second's last chance has come: it starts late. The third, with
    // the same deadline, would now need 12 s: it keeps waiting.
    clock.advance(48_000);
    expect(second.start).not.toHaveBeenCalled();
    clock.advance(1_000);
    expect(second.start).toHaveBeenCalled();
    expect(third.start).not.toHaveBeenCalled();
    expect(ledger.lateRunning()).toBe(1);
    expect(line.stats()).toMatchObject({ active: 2, waiting: 1 });
  });

  test('the head is refused rather than started when less time is left than recent chats took', async () => {
    const { clock, chats, line } = await measureSlowLine(15_000, 6);
    // chats[3] started at 45 s (deadline 60 s: 15 s left = a chat's run time); chats[4] waits.
    clock.advance(15_000);
    finish(chats[3].run);
    await flushMicrotasks();
    expect(chats[4].start).not.toHaveBeenCalled();
    expect(errorOf(chats[4].run)?.code).toBe('overloaded');
    expect(line.stats().active).toBe(0);
  });
});

describe('admission properties', () => {
  test('nothing measured: no arrival, waiting or starting chat is ever refused', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100_000 }),
        fc.integer({ min: 0, max: 10_000_000 }),
        (position, now) => {
          const clock = new ManualClock(now);
          const admission = new ChatAdmission({
            maxRunning: 10,
            chatTimeoutMs: 60_000,
            enabled: true,
            room: new ProviderRoom(1, clock),
            meter: new LineMeter({ clock, maxAgeMs: 60_000 }),
            ledger: new RunLedger({ clock, maxAgeMs: 60_000 }),
          });
          expect(() => admission.checkArrival(position, now)).not.toThrow();
          expect(admission.checkWaiting(position, now + 1, now)).toBeUndefined();
          expect(admission.checkStart(now + 1, now)).toEqual({ start: true });
        },
      ),
    );
  });

  test('a new chat is refused exactly when its measured projected finish passes its deadline; a waiting one only when even starting now would', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 10, max: 5_000 }),
        fc.integer({ min: 100, max: 50_000 }),
        fc.integer({ min: 1, max: 2_000 }),
        fc.integer({ min: 1_000, max: 120_000 }),
        (gapMs, runMs, position, leftMs) => {
          const clock = new ManualClock(0);
          const meter = new LineMeter({ clock, maxAgeMs: 3_600_000 });
          meter.lineLength(1);
          for (let index = 0; index < 5; index++) {
            clock.advance(gapMs);
            meter.drained();
          }
          meter.runStarted('measured');
          clock.advance(runMs);
          meter.runEnded('measured', true);
          const ledger = new RunLedger({ clock, maxAgeMs: 3_600_000 });
          const admission = new ChatAdmission({
            maxRunning: 10,
            chatTimeoutMs: leftMs,
            enabled: true,
            room: new ProviderRoom(1, clock),
            meter,
            ledger,
          });
          const now = clock.now();
          // The rate at the top of its uncertainty (five starts: (5 + 2 + 2·√6) / 5 times the measured one).
          const rate = (meter.drainRatePerMs()! * (5 + 2 + 2 * Math.sqrt(6))) / 5;
          const finishAt = now + (position - 1) / rate + runMs;
          let arrivalRefusal: AppError | undefined;
          try {
            admission.checkArrival(position, now);
          } catch (error) {
            arrivalRefusal = error as AppError;
          }
          expect(arrivalRefusal !== undefined).toBe(finishAt > now + leftMs);
          if (arrivalRefusal) expect(arrivalRefusal.retryAfterMs).toBeGreaterThanOrEqual(1000);
          // A waiting chat: not refused until what starting now takes (the late run time) is
          // measured; then when even that, or the median run if shorter, would finish too late.
          expect(admission.checkWaiting(position, now + leftMs, now)).toBeUndefined();
          for (let index = 0; index < 10; index++) meter.servedElsewhere({ serviceMs: runMs, calls: 1 });
          for (let index = 0; index <= 10; index++)
            ledger.clusterStarted('default', now - 10 + index, 1, true);
          const waitingRefusal = admission.checkWaiting(position, now + leftMs, now);
          expect(waitingRefusal !== undefined).toBe(runMs > leftMs);
        },
      ),
    );
  });
});

describe('admission over a real server (closed loop end to end)', () => {
  test('a burst on a cold server runs no more chats than the provider has slots; none is refused', async () => {
    // Cache off: a chat reaches the queue within the turn it starts in, the case that once let a
    // whole burst start in one pass before the queue had reported its first call.
    const troupe = await startTestTroupe({
      LLM_MAX_CONCURRENT: '2',
      SIM_LATENCY_MS: '20',
      LLM_CACHE: 'off',
    });
    try {
      let mostQueued = 0;
      let done = false;
      const watching = (async () => {
        while (!done) {
          mostQueued = Math.max(mostQueued, troupe.scheduler.status().queueLength);
          await new Promise((resolve) => setImmediate(resolve));
        }
      })();
      const answers = await Promise.all(
        Array.from({ length: 12 }, (_, index) =>
          fetch(`${troupe.url}/api/chat`, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
            body: JSON.stringify({ message: `burst question ${index}`, mode: 'single' }),
          }).then((response) => response.status),
        ),
      );
      done = true;
      await watching;
      expect(answers).toEqual(Array(12).fill(200));
      expect(troupe.scheduler.status().totalSuccess).toBe(12);
      // Each single chat holds one call at a time: two run and the rest wait in the line, so a call
      // waits for a slot only in the moment between a release and the next dispatch.
      expect(mostQueued).toBeLessThanOrEqual(1);
    } finally {
      await troupe.stop();
    }
  });
});

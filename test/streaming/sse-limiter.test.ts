import { ManualClock, flushMicrotasks } from '../../api/clock';
import { AppError } from '../../api/errors';
import { Run } from '../../api/streaming/run';
import type { RunEvent } from '../../api/streaming/run-events';
import { SseLimiter, type SseLimiterOptions } from '../../api/streaming/sse-limiter';
import { ChatAdmission, type AdmissionOptions } from '../../api/llm/admission';
import { LineMeter } from '../../api/llm/line-meter';
import { ProviderRoom } from '../../api/llm/provider-room';
import { RunLedger } from '../../api/llm/run-ledger';

const usage = { promptTokens: 1, completionTokens: 1 };

/** A run as ChatService makes it: `run` first, an error event when cancelled before it started. */
function makeRun(userId = 'u1'): { run: Run; start: jest.Mock<Promise<void>, []>; started: () => boolean } {
  const run = new Run('c-' + userId, userId, 100);
  run.emit('run', { runId: run.id, conversationId: run.conversationId });
  let started = false;
  run.signal.addEventListener('abort', () => {
    const reason = run.signal.reason as AppError;
    run.emit('error', reason.toBody().error);
  });
  const start = jest.fn(async () => {
    started = true;
  });
  return { run, start, started: () => started };
}

function finish(run: Run): void {
  run.emit('done', {
    conversationId: run.conversationId,
    messageId: 'm',
    answer: 'ok',
    usage,
    timings: { totalMs: 1, queueWaitMs: 0 },
  });
}

function queuedEvents(run: Run): Array<Extract<RunEvent, { event: 'queued' }>> {
  return run.events().filter((record) => record.event === 'queued') as Array<
    Extract<RunEvent, { event: 'queued' }>
  >;
}

/** Collects every `queued` event a run emits, even those its log later supersedes. */
function recordQueued(run: Run): Array<{ position: number; estimatedWaitMs: number | null; token: string }> {
  const seen: Array<{ position: number; estimatedWaitMs: number | null; token: string }> = [];
  run.subscribe((record) => {
    if (record.event === 'queued' && 'token' in record.data) seen.push(record.data);
  });
  return seen;
}

/** Admission over a provider with room to spare (nothing reports calls waiting): streams are the limit. */
function makeAdmission(
  clock: ManualClock,
  maxRunning: number,
  overrides: Partial<AdmissionOptions> = {},
): ChatAdmission {
  return new ChatAdmission({
    maxRunning,
    chatTimeoutMs: 0,
    enabled: true,
    room: new ProviderRoom(1000, clock),
    meter: new LineMeter({ clock, maxAgeMs: 60_000 }),
    ledger: new RunLedger({ clock, maxAgeMs: 60_000 }),
    ...overrides,
  });
}

function makeLimiter(clock: ManualClock, overrides: Partial<SseLimiterOptions> = {}): SseLimiter {
  const maxConcurrent = overrides.maxConcurrent ?? 2;
  return new SseLimiter({
    clock,
    admission: makeAdmission(clock, maxConcurrent),
    maxConcurrent,
    queueMax: 3,
    tokenGraceMs: 5000,
    resumeGraceMs: 8000,
    refreshMs: 3000,
    ...overrides,
  });
}

describe('SseLimiter admission', () => {
  test('serves up to maxConcurrent at once, queues the rest with positions and estimates, starts them FIFO', async () => {
    const clock = new ManualClock();
    const limiter = makeLimiter(clock, { queueMax: 10 });
    const chats = Array.from({ length: 5 }, () => makeRun());
    const admissions = chats.map(({ run, start }) => limiter.admit(run, start));

    expect(admissions.map((admission) => admission.position)).toEqual([0, 0, 1, 2, 3]);
    expect(chats.map((chat) => chat.started())).toEqual([true, true, false, false, false]);
    // Nothing measured yet: no estimate is made up.
    expect(admissions.map((admission) => admission.estimatedWaitMs)).toEqual([0, 0, null, null, null]);
    expect(queuedEvents(chats[2].run)[0].data).toEqual({
      position: 1,
      estimatedWaitMs: null,
      token: admissions[2].token,
    });
    expect(queuedEvents(chats[0].run)).toHaveLength(0);
    expect(limiter.stats()).toMatchObject({
      active: 2,
      max: 2,
      waiting: 3,
      totalServed: 2,
      currentEstimatedWaitMs: null,
    });

    clock.advance(4000);
    finish(chats[1].run);
    await flushMicrotasks();
    expect(chats.map((chat) => chat.started())).toEqual([true, true, true, false, false]);
    clock.advance(2000);
    finish(chats[0].run);
    await flushMicrotasks();
    expect(chats.map((chat) => chat.started())).toEqual([true, true, true, true, false]);
    expect(limiter.stats()).toMatchObject({ active: 2, waiting: 1, totalServed: 4 });
    // Waits that really happened: 4 s and 6 s.
    expect(limiter.stats().averageWaitMs).toBe(5000);
  });

  test('a waiting run hears its new place when it moves, and its place again every refreshMs', async () => {
    const clock = new ManualClock();
    const limiter = makeLimiter(clock);
    const [first, second, third, fourth] = Array.from({ length: 4 }, () => makeRun());
    for (const chat of [first, second, third, fourth]) limiter.admit(chat.run, chat.start);
    const heard = recordQueued(fourth.run);
    expect(heard.map((data) => data.position)).toEqual([2]);

    finish(first.run);
    await flushMicrotasks();
    expect(heard.map((data) => data.position)).toEqual([2, 1]);

    clock.advance(2999);
    expect(heard).toHaveLength(2);
    clock.advance(1);
    expect(heard.map((data) => data.position)).toEqual([2, 1, 1]);
    clock.advance(3000);
    expect(heard).toHaveLength(4);
    // The run log keeps only the latest `queued`: a replay needs the current place, not the history.
    expect(queuedEvents(fourth.run)).toHaveLength(1);
    expect(new Set(heard.map((data) => data.token)).size).toBe(1);
  });

  test("estimates follow the line's measured drain rate and the position", async () => {
    const clock = new ManualClock();
    const limiter = makeLimiter(clock, { maxConcurrent: 1, queueMax: 10 });
    const chats = Array.from({ length: 4 }, () => makeRun());
    for (const { run, start } of chats) limiter.admit(run, start);
    expect(limiter.stats()).toMatchObject({ currentEstimatedWaitMs: null, meanRunMs: null });
    clock.advance(2000);
    finish(chats[0].run);
    await flushMicrotasks();
    expect(limiter.stats().meanRunMs).toBe(2000);
    // One start from the line is no rate yet.
    expect(limiter.stats().currentEstimatedWaitMs).toBeNull();
    clock.advance(4000);
    finish(chats[1].run);
    await flushMicrotasks();
    // Two starts over the 4 s of busy time since the first: one every 2 s (counted generously).
    // A chat arriving now would be second: 4 s; the one waiting is first: 2 s.
    expect(limiter.stats()).toMatchObject({ meanRunMs: 3000, waiting: 1, currentEstimatedWaitMs: 4000 });
    await new Promise((resolve) => setImmediate(resolve));
    expect(queuedEvents(chats[3].run).at(-1)?.data).toMatchObject({ position: 1, estimatedWaitMs: 2000 });
  });

  test('past the line bound a chat is refused with overloaded, Retry-After and the estimated wait', () => {
    const clock = new ManualClock();
    const limiter = makeLimiter(clock, { queueMax: 1 });
    for (let i = 0; i < 3; i++) {
      const chat = makeRun();
      limiter.admit(chat.run, chat.start);
    }
    let caught: unknown;
    try {
      limiter.assertRoom();
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(AppError);
    const error = caught as AppError;
    expect(error.code).toBe('overloaded');
    expect(error.status).toBe(503);
    expect(error.retryAfterMs).toBeGreaterThanOrEqual(1000);
    expect(error.details).toMatchObject({ waiting: 1, max: 2 });
    expect(error.message).toMatch(/waiting line is full/);
    const late = makeRun();
    expect(() => limiter.admit(late.run, late.start)).toThrow(AppError);
    expect(late.start).not.toHaveBeenCalled();
    expect(limiter.stats()).toMatchObject({ refused: 2, waiting: 1 });
  });

  test('with SSE_QUEUE_MAX=0 there is no line: busy means refused', () => {
    const limiter = makeLimiter(new ManualClock(), { maxConcurrent: 1, queueMax: 0 });
    const first = makeRun();
    limiter.admit(first.run, first.start);
    expect(() => limiter.assertRoom()).toThrow(expect.objectContaining({ code: 'overloaded' }));
  });

  test('a run cancelled while waiting leaves the line and those behind move up', async () => {
    const clock = new ManualClock();
    const limiter = makeLimiter(clock);
    const chats = Array.from({ length: 4 }, () => makeRun());
    for (const chat of chats) limiter.admit(chat.run, chat.start);
    const heard = recordQueued(chats[3].run);
    chats[2].run.cancel();
    await flushMicrotasks();
    expect(limiter.stats()).toMatchObject({ waiting: 1, cancellations: 1 });
    expect(heard.at(-1)?.position).toBe(1);
    finish(chats[0].run);
    await flushMicrotasks();
    expect(chats[2].start).not.toHaveBeenCalled();
    expect(chats[3].started()).toBe(true);
  });

  test('cancelling a running run frees its slot at once for the next in line', () => {
    const clock = new ManualClock();
    const limiter = makeLimiter(clock);
    const chats = Array.from({ length: 3 }, () => makeRun());
    for (const chat of chats) limiter.admit(chat.run, chat.start);
    chats[0].run.cancel(new AppError('cancelled'));
    expect(chats[2].started()).toBe(true);
    expect(limiter.stats()).toMatchObject({ active: 2, waiting: 0, cancellations: 1 });
  });

  test('a start() that throws still ends the run and frees the slot', async () => {
    const limiter = makeLimiter(new ManualClock(), { maxConcurrent: 1 });
    const broken = makeRun();
    broken.start.mockRejectedValueOnce(new Error('boom'));
    const next = makeRun();
    limiter.admit(broken.run, broken.start);
    limiter.admit(next.run, next.start);
    await flushMicrotasks();
    expect(broken.run.events().at(-1)).toMatchObject({ event: 'error', data: { code: 'internal' } });
    expect(next.started()).toBe(true);
  });

  test('close() stops dispatching and refuses new chats with shutting_down', async () => {
    const limiter = makeLimiter(new ManualClock());
    const chats = Array.from({ length: 3 }, () => makeRun());
    for (const chat of chats) limiter.admit(chat.run, chat.start);
    limiter.close();
    finish(chats[0].run);
    await flushMicrotasks();
    expect(chats[2].started()).toBe(false);
    expect(() => limiter.assertRoom()).toThrow(expect.objectContaining({ code: 'shutting_down' }));
    // The owner cancels what is left; the waiting run still leaves the line through its signal.
    chats[2].run.cancel(new AppError('shutting_down'));
    expect(limiter.stats().waiting).toBe(0);
    expect(chats[2].run.events().at(-1)).toMatchObject({ event: 'error', data: { code: 'shutting_down' } });
  });
});

describe('SseLimiter tokens and grace periods', () => {
  test('a waiting run whose client left is cancelled after the token grace, unless it comes back', async () => {
    const clock = new ManualClock();
    const limiter = makeLimiter(clock);
    const chats = Array.from({ length: 4 }, () => makeRun());
    const admissions = chats.map((chat) => limiter.admit(chat.run, chat.start));
    const [, , third, fourth] = chats;

    // Both waiting clients leave; the third comes back with its token within the grace.
    limiter.detach(third.run);
    limiter.detach(fourth.run);
    clock.advance(4000);
    expect(limiter.findByToken(admissions[2].token, 'someone-else')).toBeUndefined();
    expect(limiter.findByToken('not-a-token', 'u1')).toBeUndefined();
    expect(limiter.findByToken(admissions[2].token, 'u1')).toBe(third.run);
    limiter.attach(third.run, { resume: true });
    clock.advance(1000);
    expect(fourth.run.signal.aborted).toBe(true);
    expect(fourth.run.events().at(-1)).toMatchObject({ event: 'error', data: { code: 'cancelled' } });
    expect(third.run.signal.aborted).toBe(false);
    expect(limiter.positionOf(third.run)).toBe(1);
    expect(limiter.findByToken(admissions[3].token, 'u1')).toBeUndefined();
    expect(limiter.stats()).toMatchObject({ waiting: 1, resumes: 1, cancellations: 1 });
  });

  test('a started run outlives its last listener by the resume grace, then is cancelled and frees its slot', async () => {
    const clock = new ManualClock();
    const limiter = makeLimiter(clock);
    const chats = Array.from({ length: 3 }, () => makeRun());
    for (const chat of chats) limiter.admit(chat.run, chat.start);
    limiter.detach(chats[0].run);
    clock.advance(7999);
    expect(chats[0].run.signal.aborted).toBe(false);
    expect(chats[2].started()).toBe(false);
    clock.advance(1);
    expect(chats[0].run.signal.aborted).toBe(true);
    expect(chats[2].started()).toBe(true);
  });

  test('a run that still has a listener, or has finished, is never abandoned', async () => {
    const clock = new ManualClock();
    const limiter = makeLimiter(clock, { resumeGraceMs: 0 });
    const followed = makeRun();
    limiter.admit(followed.run, followed.start);
    const unsubscribe = followed.run.subscribe(() => undefined);
    limiter.detach(followed.run);
    expect(followed.run.signal.aborted).toBe(false);
    unsubscribe();
    finish(followed.run);
    limiter.detach(followed.run);
    expect(followed.run.signal.aborted).toBe(false);
    // With no grace, a run nobody follows is cancelled at once.
    const alone = makeRun();
    limiter.admit(alone.run, alone.start);
    limiter.detach(alone.run);
    expect(alone.run.signal.aborted).toBe(true);
  });

  test('clients leaving by the hundred: cancellations go 100 a turn, and a departed run reaching a free slot is cancelled, never started', async () => {
    const clock = new ManualClock();
    const limiter = makeLimiter(clock, {
      maxConcurrent: 1,
      queueMax: 1000,
      tokenGraceMs: 0,
      resumeGraceMs: 0,
    });
    const chats = Array.from({ length: 301 }, () => makeRun());
    for (const chat of chats) limiter.admit(chat.run, chat.start);
    // The clients of places 101-250 leave first, then those of places 1-50, all in one turn.
    for (const chat of [...chats.slice(101, 251), ...chats.slice(1, 51)]) limiter.detach(chat.run);
    expect(chats.filter((chat) => chat.run.signal.aborted)).toHaveLength(100);
    // The running chat ends: the head of the line left (its cancellation is queued) and is
    // cancelled now rather than started; the turn's budget is spent, so the slot waits a turn.
    finish(chats[0].run);
    await flushMicrotasks();
    expect(limiter.stats()).toMatchObject({ active: 0 });
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    for (const chat of [...chats.slice(101, 251), ...chats.slice(1, 51)]) {
      expect(chat.run.signal.aborted).toBe(true);
      expect(chat.started()).toBe(false);
    }
    // The first client still there got the slot; one reason for every run cancelled with no grace.
    expect(chats[51].started()).toBe(true);
    expect(limiter.stats()).toMatchObject({ active: 1, waiting: 99, cancellations: 200 });
    expect(new Set(chats.slice(1, 51).map((chat) => chat.run.signal.reason)).size).toBe(1);
    limiter.close();
  });

  test('the queued cancellations share the turn budget with the departures of that turn', async () => {
    const clock = new ManualClock();
    const limiter = makeLimiter(clock, {
      maxConcurrent: 1,
      queueMax: 1000,
      tokenGraceMs: 0,
      resumeGraceMs: 0,
    });
    const chats = Array.from({ length: 301 }, () => makeRun());
    for (const chat of chats) limiter.admit(chat.run, chat.start);
    const aborted = () => chats.filter((chat) => chat.run.signal.aborted).length;
    // 150 leave in one turn: 100 cancelled at once, 50 queued.
    for (const chat of chats.slice(1, 151)) limiter.detach(chat.run);
    expect(aborted()).toBe(100);
    // The next turn cancels the 50 queued; 100 more leaving in that same turn get the 50 left.
    await new Promise((resolve) => setImmediate(resolve));
    expect(aborted()).toBe(150);
    for (const chat of chats.slice(151, 251)) limiter.detach(chat.run);
    expect(aborted()).toBe(200);
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(aborted()).toBe(250);
    limiter.close();
  });

  test('a token stays valid after its run starts, and dies with the run', async () => {
    const clock = new ManualClock();
    const limiter = makeLimiter(clock, { maxConcurrent: 1 });
    const first = makeRun();
    const second = makeRun('u2');
    limiter.admit(first.run, first.start);
    const { token } = limiter.admit(second.run, second.start);
    finish(first.run);
    await flushMicrotasks();
    expect(second.started()).toBe(true);
    expect(limiter.findByToken(token, 'u2')).toBe(second.run);
    finish(second.run);
    await flushMicrotasks();
    expect(limiter.findByToken(token, 'u2')).toBeUndefined();
  });
});

describe('SseLimiter with a long line', () => {
  /**
   * Lets the current event-loop turn end, with its budget of places told (100): a refresh timer
   * fires in a later turn than the moves before it. (Two: this turn's immediates may be queued
   * after the caller's.)
   */
  async function nextTurn(): Promise<void> {
    for (let turn = 0; turn < 2; turn++) await new Promise((resolve) => setImmediate(resolve));
  }

  /** Lets the periodic refresh's slices (100 places a turn, the first with the timer) reach `places`. */
  async function refreshSlices(places: number): Promise<void> {
    for (let turn = 1; turn < Math.ceil(places / 100); turn++)
      await new Promise((resolve) => setImmediate(resolve));
  }

  test('a freed slot tells the front of the line at once and the rest on the next refresh (their estimate moved)', async () => {
    const clock = new ManualClock();
    const limiter = makeLimiter(clock, { maxConcurrent: 1, queueMax: 1000 });
    const runs = Array.from({ length: 301 }, () => makeRun());
    for (const { run, start } of runs) limiter.admit(run, start);
    await flushMicrotasks();
    const seen = runs.map(({ run }) => recordQueued(run));
    for (const events of seen) events.length = 0; // only what follows the slot freeing counts

    finish(runs[0].run);
    await new Promise((resolve) => setImmediate(resolve));
    await nextTurn();
    for (const events of seen) events.length = 0;
    clock.advance(1000);
    // The second start from the line: its drain rate is measured, so every estimate changes.
    finish(runs[1].run);
    await new Promise((resolve) => setImmediate(resolve));
    // runs[2] took the slot; runs[3..102] moved up to places 1-100 and hear it now; the rest later.
    expect(runs[2].started()).toBe(true);
    expect(seen[3]).toEqual([expect.objectContaining({ position: 1 })]);
    expect(seen[102]).toEqual([expect.objectContaining({ position: 100 })]);
    expect(seen[103]).toEqual([]);
    expect(seen[300]).toEqual([]);

    await nextTurn();
    clock.advance(3000);
    await refreshSlices(300);
    expect(seen[103].at(-1)).toMatchObject({ position: 101 });
    expect(seen[300].at(-1)).toMatchObject({ position: 298 });
    limiter.close();
  });

  test('the periodic refresh tells a long line in slices, leaving the event loop free between them', async () => {
    const clock = new ManualClock();
    const limiter = makeLimiter(clock, { maxConcurrent: 1, queueMax: 5000 });
    const runs = Array.from({ length: 2501 }, () => makeRun());
    for (const { run, start } of runs) limiter.admit(run, start);
    // The 200 at the front of the line leave: every place behind them moves by at least 8 %.
    for (const { run } of runs.slice(1, 201)) run.cancel();
    await flushMicrotasks();
    const seen = runs.map(({ run }) => recordQueued(run));
    for (const events of seen) events.length = 0;

    await nextTurn();
    clock.advance(3000);
    // The first slice went out with the timer; the last place waits for later turns of the loop.
    expect(seen[201]).toEqual([expect.objectContaining({ position: 1 })]);
    expect(seen[300]).toEqual([expect.objectContaining({ position: 100 })]);
    expect(seen[301]).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen[400]).toEqual([expect.objectContaining({ position: 200 })]);
    expect(seen[401]).toEqual([]);
    for (let turn = 0; turn < 22; turn++) await new Promise((resolve) => setImmediate(resolve));
    expect(seen[2500]).toEqual([expect.objectContaining({ position: 2300 })]);
    limiter.close();
  });

  test("departures spread over one turn tell the front of the first at once, then once at the turn's end", async () => {
    const clock = new ManualClock();
    const limiter = makeLimiter(clock, { maxConcurrent: 1, queueMax: 100 });
    const runs = Array.from({ length: 21 }, () => makeRun());
    for (const { run, start } of runs) limiter.admit(run, start);
    await new Promise((resolve) => setImmediate(resolve));
    const last = recordQueued(runs[20].run);
    last.length = 0;
    // Ten clients leave, each in its own callback of the same turn (microtasks run in between).
    for (const { run } of runs.slice(1, 11)) {
      run.cancel();
      await flushMicrotasks();
    }
    expect(last.map((data) => data.position)).toEqual([19]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(last.map((data) => data.position)).toEqual([19, 10]);
    limiter.close();
  });

  test('the front and the refresh tell at most 100 places a turn together; the rest hear it the next turn', async () => {
    const clock = new ManualClock();
    const limiter = makeLimiter(clock, { maxConcurrent: 1, queueMax: 1000 });
    const runs = Array.from({ length: 202 }, () => makeRun());
    for (const { run, start } of runs) limiter.admit(run, start);
    await new Promise((resolve) => setImmediate(resolve));
    const seen = runs.map(({ run }) => recordQueued(run));
    for (const events of seen) events.length = 0;

    // The refresh tells the front its places (100); in the same turn the head of the line leaves.
    await nextTurn();
    clock.advance(3000);
    runs[1].run.cancel();
    await flushMicrotasks();
    expect(seen[2]).toEqual([expect.objectContaining({ position: 2 })]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen[2]).toEqual([
      expect.objectContaining({ position: 2 }),
      expect.objectContaining({ position: 1 }),
    ]);
    expect(seen[101].at(-1)).toMatchObject({ position: 100 });
    limiter.close();
  });

  test('a waiting run whose streams were not being read starts a moment after its slot frees; cancelled meanwhile, it never starts', async () => {
    const clock = new ManualClock();
    const unread = new Set<Run>();
    const limiter = makeLimiter(clock, {
      maxConcurrent: 1,
      queueMax: 10,
      readFirst: (run) => unread.has(run),
    });
    const [first, second, third, fourth] = Array.from({ length: 4 }, () => makeRun());
    for (const chat of [first, second, third, fourth]) limiter.admit(chat.run, chat.start);
    unread.add(second.run);
    unread.add(third.run);

    finish(first.run);
    await flushMicrotasks();
    // The slot is second's at once (nobody overtakes it), its start a moment later.
    expect(limiter.stats()).toMatchObject({ active: 1, waiting: 2 });
    expect(second.started()).toBe(false);
    clock.advance(20);
    // And two event-loop turns more: a poll to read its end of file, a close phase to close its stream.
    await new Promise((resolve) => setImmediate(resolve));
    expect(second.started()).toBe(false);
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(second.started()).toBe(true);

    finish(second.run);
    await flushMicrotasks();
    // Its client turns out to have left: cancelled before its start, the slot goes on to the next.
    third.run.cancel();
    await flushMicrotasks();
    expect(fourth.started()).toBe(true);
    clock.advance(20);
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(third.started()).toBe(false);
    expect(limiter.stats()).toMatchObject({ active: 1, waiting: 0 });
  });

  test('further back than the front, the refresh tells a place only once it or its estimate moved by 5 %', async () => {
    const clock = new ManualClock();
    // No run finishes: the estimates stay those of the prior, so only places move.
    const limiter = makeLimiter(clock, { maxConcurrent: 1, queueMax: 1000 });
    const runs = Array.from({ length: 301 }, () => makeRun());
    for (const { run, start } of runs) limiter.admit(run, start);
    await flushMicrotasks();
    const seen = runs.map(({ run }) => recordQueued(run));
    for (const events of seen) events.length = 0; // the replayed place each was told on joining

    await nextTurn();
    clock.advance(3000);
    await refreshSlices(300);
    // Nothing moved: the front (100 places) hears its place again, the rest hear nothing new.
    expect(seen[100]).toEqual([expect.objectContaining({ position: 100 })]);
    expect(seen[101]).toEqual([]);
    expect(seen[300]).toEqual([]);

    // The 10 at the front leave: place 200 moves to 190 (5 %), place 300 to 290 (3 %).
    for (const { run } of runs.slice(1, 11)) run.cancel();
    await flushMicrotasks();
    for (const events of seen) events.length = 0;
    await nextTurn();
    clock.advance(3000);
    await refreshSlices(300);
    expect(seen[200]).toEqual([expect.objectContaining({ position: 190 })]);
    expect(seen[300]).toEqual([]);

    // Another 10 leave: place 300 is now 280, 6.7 % from the 300 it was told.
    for (const { run } of runs.slice(11, 21)) run.cancel();
    await flushMicrotasks();
    await nextTurn();
    clock.advance(3000);
    await refreshSlices(300);
    expect(seen[300]).toEqual([expect.objectContaining({ position: 280 })]);
    limiter.close();
  });
});

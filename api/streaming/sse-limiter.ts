import { randomUUID } from 'node:crypto';
import type { Clock, TimerHandle } from '../clock';
import { AppError, toAppError } from '../errors';
import type { Logger } from '../logger';
import type { ChatAdmission } from '../llm/admission';
import type { RunHolds } from '../llm/llm-gateway';
import type { Run } from './run';
import { TurnBudget } from './turn-budget';
import { LineNews, type WaitingPlace } from './line-news';

export interface SseLimiterOptions {
  clock: Clock;
  /**
   * Decides who starts, waits or is refused (api/llm/admission.ts); this class keeps the line and
   * does what it says.
   */
  admission: ChatAdmission;
  /** Runs served (orchestrator running) at once: SSE_MAX_CONCURRENT (admission enforces it). */
  maxConcurrent: number;
  /** Runs waiting for a slot, at most: SSE_QUEUE_MAX. 0 = no waiting line. */
  queueMax: number;
  /** How long a waiting run outlives its last listener (its token stays valid): SSE_TOKEN_GRACE_MS. */
  tokenGraceMs: number;
  /** How long a started run outlives its last listener: SSE_RESUME_GRACE_MS. */
  resumeGraceMs: number;
  /** A waiting stream is told its place at least this often, ms. */
  refreshMs?: number;
  /** How often waiting chats are checked against their deadlines, ms. */
  deadlineCheckMs?: number;
  /**
   * Holds an unattended run's LLM calls (the scheduler): a run nobody listens to starts no new call
   * during its grace, so a client that left costs at most the call in flight when it left.
   */
  runHolds?: RunHolds;
  /**
   * Called as a waiting run gets its slot: true when its streams were not being read (see
   * WaitingReads), and the run starts START_DELAY_MS and two event-loop turns later, so that a
   * client that already left is noticed (and its calls held) before the run's first provider call.
   */
  readFirst?: (run: Run) => boolean;
  logger?: Logger;
}

/** GET /api/sse/status, less `openStreams` (the heartbeat ticker knows those). */
export interface SseLimiterStats {
  active: number;
  max: number;
  waiting: number;
  /** Runs that got a slot. */
  totalServed: number;
  /** Mean of the waits that really happened, for runs that went through the line, ms. */
  averageWaitMs: number;
  /** What a chat arriving now would be told, ms (0 when it would start at once; null before the line was measured). */
  currentEstimatedWaitMs: number | null;
  /** The measured mean run time of recent completed chats, ms (null before one completed). */
  meanRunMs: number | null;
  /** Clients that came back (token or Last-Event-ID) to a run they had left. */
  resumes: number;
  /** Runs cancelled while waiting or streaming (client gone past the grace, shutdown, JSON client left…). */
  cancellations: number;
  /** Chats refused with 503 on arrival: the line full, or measured unable to start in time. */
  refused: number;
  /** Chats that joined the line and were refused later (an `overloaded` event): measured unable to start in time. */
  refusedWaiting: number;
}

export interface Admission {
  token: string;
  /** 0 when the run started at once, else its place in the line (1 = next). */
  position: number;
  /** null: the line has not been measured yet. */
  estimatedWaitMs: number | null;
}

/** Who follows a run: the stream routes report listeners coming and going. */
export interface RunAttendance {
  /** A stream started following `run`; `resume` when it is a client coming back to it. */
  attach(run: Run, options?: { resume?: boolean }): void;
  /** A stream stopped following `run`; the last one leaving starts the grace period. */
  detach(run: Run): void;
  /** Is `run` waiting in the line for a slot (not started, not finished)? */
  isWaiting(run: Run): boolean;
}

interface Entry extends WaitingPlace {
  readonly start: () => Promise<void>;
  readonly enqueuedAt: number;
  /** The chat's deadline (clock time); undefined: none. */
  readonly deadline: number | undefined;
  startedAt?: number;
  readonly onAbort: () => void;
}

/**
 * Runs cancelled per event-loop turn when their streams leave without a grace period; the rest
 * wait for the next turns. Thousands of clients hanging up at once (the sse-capacity benchmark's
 * release) otherwise cancelled every run in one pass and held the loop for most of a second.
 */
const ABANDON_SLICE = 100;
/**
 * How long a run whose streams were paused waits for their news before it starts: a client's end
 * of file takes a poll to read and a turn or two more to close the stream (sse-capacity release:
 * runs of clients already gone were started and made a call each, ~30–70 more wasted calls).
 */
const START_DELAY_MS = 20;
/**
 * Event-loop turns a run whose streams were paused also waits for, after START_DELAY_MS: its end of
 * file is read in a poll after the socket resumes, and the stream closes in that turn's close phase.
 * At the release of 10,000 streams a turn took 80–200 ms, so the 20 ms timer fired in the next
 * turn's timers phase, before that poll, and ~20 runs of clients already gone were started every
 * other turn (instrumented sse-capacity run). Two check phases later both have happened.
 */
const START_DELAY_TURNS = 2;
const DEFAULT_DEADLINE_CHECK_MS = 1_000;

/**
 * The chat line — the one waiting line a chat passes: admission (api/llm/admission.ts) says when the
 * head may start (a stream slot free and room at the provider, as measured), and which chats must be
 * refused because they cannot start in time; this class keeps the bounded FIFO line, tells waiting
 * streams their place (`queued {position, estimatedWaitMs, token}`, by LineNews) when they join and
 * as the line moves, and starts the head the moment admission says so. Past the line's bound a chat
 * is refused before any stream (AppError overloaded, with Retry-After). It also keeps the grace
 * periods of unattended runs: a run nobody follows any more is cancelled once its grace is over,
 * which frees its place or slot.
 *
 * Everything is driven by the run's own signals (abort, finished), so a run leaves the line or its
 * slot exactly once however it ends. Time comes from the injected clock.
 */
export class SseLimiter implements RunAttendance {
  /** Waiting entries in arrival order (Map keeps insertion order; deletes are O(1)). */
  private readonly line = new Map<string, Entry>();
  private readonly active = new Set<Entry>();
  /** Every entry not finished yet, by token (waiting and started runs both resume by token) and by run id. */
  private readonly byToken = new Map<string, Entry>();
  private readonly byRun = new Map<string, Entry>();
  private readonly abandonTimers = new Map<string, TimerHandle>();
  /** Runs whose LLM calls are held because nobody listens. */
  private readonly heldRuns = new Set<string>();
  private readonly admission: ChatAdmission;
  private readonly news: LineNews;
  private deadlineTimer?: TimerHandle;
  private dispatching = false;
  private dispatchAgain = false;
  private readonly abandons = new TurnBudget(ABANDON_SLICE);
  /** Runs whose cancellation waits for a later turn (past ABANDON_SLICE in one turn), with their grace. */
  private readonly deferredAbandons = new Map<Run, number>();
  private drainScheduled = false;
  /**
   * One cancellation reason per grace period, shared by every run abandoned with it: an AppError
   * per run captured a stack trace at the release of 10,000 streams (2.5 % of its CPU), and each
   * stayed alive with its finished run for the retention time (~1 KB a run).
   */
  private readonly abandonReasons = new Map<number, AppError>();
  private closed = false;
  private counters = {
    totalServed: 0,
    waited: 0,
    totalWaitMs: 0,
    resumes: 0,
    cancellations: 0,
    refused: 0,
    refusedWaiting: 0,
  };

  constructor(private readonly options: SseLimiterOptions) {
    if (!Number.isInteger(options.maxConcurrent) || options.maxConcurrent < 1) {
      throw new RangeError(
        `SseLimiter: maxConcurrent must be a positive integer, got ${options.maxConcurrent}`,
      );
    }
    this.admission = options.admission;
    this.news = new LineNews({
      clock: options.clock,
      line: this.line,
      estimator: { estimate: (position) => this.admission.estimateWaitMs(position) ?? null },
      slots: options.maxConcurrent,
      refreshMs: options.refreshMs,
    });
    // Room at the provider opened (a call started, a slot freed): the head may start now.
    this.admission.onRoom(() => this.dispatch());
  }

  /**
   * Throws before any work is done when a new chat must not join: shutting_down after close();
   * overloaded (with retryAfterMs and the estimated wait) when the line is full, or when admission
   * measured that a chat joining it now cannot start in time.
   */
  assertRoom(): void {
    if (this.closed) throw new AppError('shutting_down');
    const startsNow = this.line.size === 0 && this.admission.mayStart(this.active.size);
    try {
      if (!startsNow && this.line.size >= this.options.queueMax) throw this.overloaded();
      this.admission.checkArrival(startsNow ? 0 : this.line.size + 1, this.options.clock.now());
    } catch (error) {
      this.counters.refused++;
      this.admission.refusedOnArrival();
      throw error;
    }
  }

  /**
   * Serves `run` now (calling `start`) or puts it at the end of the line and tells it `queued`.
   * Throws like assertRoom when there is no room (the caller then cancels the run). A run that
   * is already cancelled is not admitted: its own error event ends it.
   */
  admit(run: Run, start: () => Promise<void>, deadline?: number): Admission {
    this.assertRoom();
    // 122 random bits, from Node's pooled UUID entropy: randomBytes() read the system's random
    // source once per chat (~2 % of a one-call chat's CPU in the cpu benchmark's profile).
    const token = randomUUID();
    if (run.signal.aborted || run.isFinished) return { token, position: 0, estimatedWaitMs: 0 };
    const entry: Entry = {
      run,
      start,
      token,
      enqueuedAt: this.options.clock.now(),
      deadline,
      toldPosition: 0,
      toldEstimateMs: 0,
      onAbort: () => this.onAbort(entry),
    };
    this.byToken.set(token, entry);
    this.byRun.set(run.id, entry);
    run.signal.addEventListener('abort', entry.onAbort, { once: true });
    void run.finished.then(() => this.onFinished(entry));

    if (this.line.size === 0 && this.admission.mayStart(this.active.size)) {
      this.startEntry(entry);
      return { token, position: 0, estimatedWaitMs: 0 };
    }
    this.line.set(token, entry);
    this.lineChanged();
    const position = this.line.size;
    this.news.joined(entry, position);
    return { token, position, estimatedWaitMs: this.admission.estimateWaitMs(position) ?? null };
  }

  /**
   * The run a queue token belongs to, while it is not finished and it is `userId`'s; undefined
   * otherwise (unknown, expired, or someone else's token are alike to the caller).
   */
  findByToken(token: string, userId: string): Run | undefined {
    const entry = this.byToken.get(token);
    if (!entry || entry.run.userId !== userId || entry.run.isFinished || entry.run.signal.aborted)
      return undefined;
    return entry.run;
  }

  /** 1-based place of a waiting run; 0 when it is not waiting. O(position). */
  positionOf(run: Run): number {
    let position = 0;
    for (const entry of this.line.values()) {
      position++;
      if (entry.run === run) return position;
    }
    return 0;
  }

  isWaiting(run: Run): boolean {
    const entry = this.byRun.get(run.id);
    return entry !== undefined && this.line.has(entry.token);
  }

  attach(run: Run, options: { resume?: boolean } = {}): void {
    const timer = this.abandonTimers.get(run.id);
    if (timer) {
      this.options.clock.clearTimeout(timer);
      this.abandonTimers.delete(run.id);
    }
    if ((timer || options.resume) && !run.isFinished) this.counters.resumes++;
    this.deferredAbandons.delete(run);
    this.unhold(run);
  }

  detach(run: Run): void {
    if (run.isFinished || run.signal.aborted || run.listenerCount > 0 || this.abandonTimers.has(run.id))
      return;
    const entry = this.byRun.get(run.id);
    const waiting = entry !== undefined && this.line.has(entry.token);
    const graceMs = waiting ? this.options.tokenGraceMs : this.options.resumeGraceMs;
    this.hold(run);
    if (graceMs <= 0) {
      this.abandonSoon(run, graceMs);
      return;
    }
    this.abandonTimers.set(
      run.id,
      this.options.clock.setTimeout(() => {
        this.abandonTimers.delete(run.id);
        this.abandon(run, graceMs);
      }, graceMs),
    );
  }

  stats(): SseLimiterStats {
    const { totalServed, waited, totalWaitMs, resumes, cancellations, refused, refusedWaiting } =
      this.counters;
    const startsNow = this.line.size === 0 && this.admission.mayStart(this.active.size);
    const meanRunMs = this.admission.meanRunMs();
    return {
      active: this.active.size,
      max: this.options.maxConcurrent,
      waiting: this.line.size,
      totalServed,
      averageWaitMs: waited === 0 ? 0 : Math.round(totalWaitMs / waited),
      currentEstimatedWaitMs: startsNow ? 0 : (this.admission.estimateWaitMs(this.line.size + 1) ?? null),
      meanRunMs: meanRunMs === undefined ? null : Math.round(meanRunMs),
      resumes,
      cancellations,
      refused,
      refusedWaiting,
    };
  }

  /**
   * Ends every chat waiting in the line with queue_cleared (an operator's DELETE /api/queue/clear);
   * running chats go on. Returns how many were ended.
   */
  clearWaiting(): number {
    const waiting = [...this.line.values()];
    const reason = new AppError('queue_cleared');
    for (const entry of waiting) this.refuse(entry, reason);
    if (waiting.length > 0) this.news.moved();
    return waiting.length;
  }

  /**
   * Stops admitting and dispatching (shutdown). Runs are not cancelled here: the owner cancels
   * them (shutting_down), and each leaves the line through its abort signal.
   */
  close(): void {
    this.closed = true;
    this.news.close();
    if (this.deadlineTimer) this.options.clock.clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
    for (const timer of this.abandonTimers.values()) this.options.clock.clearTimeout(timer);
    this.abandonTimers.clear();
  }

  private hold(run: Run): void {
    const holds = this.options.runHolds;
    if (!holds || this.heldRuns.has(run.id)) return;
    this.heldRuns.add(run.id);
    holds.hold(run.id);
    // However the run ends (cancelled at the grace's end, or finishing its call), forget the hold.
    void run.finished.then(() => this.unhold(run));
  }

  private unhold(run: Run): void {
    if (!this.heldRuns.delete(run.id)) return;
    this.options.runHolds?.release(run.id);
  }
  /** Abandons now while this turn's budget lasts (and nobody is ahead in the deferred line); later otherwise. */
  private abandonSoon(run: Run, graceMs: number): void {
    if (this.deferredAbandons.size === 0 && this.abandons.take()) {
      this.abandon(run, graceMs);
      return;
    }
    this.deferredAbandons.set(run, graceMs);
    if (!this.drainScheduled) {
      this.drainScheduled = true;
      setImmediate(this.drainAbandons);
    }
  }

  private readonly drainAbandons = (): void => {
    this.drainScheduled = false;
    // The same budget as the departures' own cancellations: a turn that read 100 departures and
    // cancelled them has none left for the queue (it held up to 200 cancellations a turn).
    for (const [run, graceMs] of this.deferredAbandons) {
      if (!this.abandons.take()) break;
      this.deferredAbandons.delete(run);
      this.abandon(run, graceMs);
    }
    if (this.deferredAbandons.size > 0 && !this.drainScheduled) {
      this.drainScheduled = true;
      setImmediate(this.drainAbandons);
    }
    // Slots that dispatch left free for a run whose cancellation was queued (see dispatch).
    this.dispatch();
  };

  private abandon(run: Run, graceMs: number): void {
    if (run.isFinished || run.listenerCount > 0) return;
    this.options.logger?.info({ runId: run.id, graceMs }, 'nobody resumed the run: cancelling it');
    let reason = this.abandonReasons.get(graceMs);
    if (!reason) {
      reason = new AppError('cancelled', `Nobody followed the run for ${graceMs} ms; it was cancelled`);
      this.abandonReasons.set(graceMs, reason);
    }
    run.cancel(reason);
  }

  private startEntry(entry: Entry): void {
    const now = this.options.clock.now();
    const waited = this.line.delete(entry.token);
    if (waited) this.lineChanged();
    this.active.add(entry);
    entry.startedAt = now;
    this.admission.started(entry.run.id, waited);
    this.counters.totalServed++;
    if (entry.toldPosition > 0) {
      this.counters.waited++;
      this.counters.totalWaitMs += now - entry.enqueuedAt;
    }
    if (entry.toldPosition > 0 && this.options.readFirst?.(entry.run)) {
      this.options.clock.setTimeout(() => this.startAfterTurns(entry, START_DELAY_TURNS), START_DELAY_MS);
      return;
    }
    this.runStart(entry);
  }

  private startAfterTurns(entry: Entry, turns: number): void {
    if (turns === 0) this.runStart(entry);
    else setImmediate(() => this.startAfterTurns(entry, turns - 1));
  }

  private runStart(entry: Entry): void {
    const graceMs = this.deferredAbandons.get(entry.run);
    if (graceMs !== undefined) {
      // Its client left while it waited to start (readFirst) and its cancellation is queued
      // behind others: cancelled now, before any call (at most a slot's worth per start).
      this.deferredAbandons.delete(entry.run);
      this.abandon(entry.run, graceMs);
    }
    // Cancelled meanwhile: its abort already gave the slot back.
    if (entry.run.signal.aborted || entry.run.isFinished) return;
    entry.start().catch((error: unknown) => {
      // start() should end the run itself; if it throws instead, end it here so the slot is freed.
      this.options.logger?.error({ err: error, runId: entry.run.id }, 'a run failed to start');
      if (!entry.run.isFinished) entry.run.emit('error', toAppError(error).toBody().error);
    });
  }

  private onAbort(entry: Entry): void {
    // Aborting a run that already completed changes nothing; its `finished` handler releases it.
    // (A run cancelled before it started may already carry its `error` event: that one counts.)
    if (entry.run.events().at(-1)?.event === 'done') return;
    if (this.line.delete(entry.token)) {
      this.counters.cancellations++;
      this.lineChanged();
      this.news.moved();
    } else if (this.active.has(entry)) {
      this.counters.cancellations++;
      // The slot goes to the next in line at once; the cancelled run winds down on its own.
      this.release(entry);
    }
  }

  private onFinished(entry: Entry): void {
    entry.run.signal.removeEventListener('abort', entry.onAbort);
    this.deferredAbandons.delete(entry.run);
    this.byToken.delete(entry.token);
    this.byRun.delete(entry.run.id);
    const timer = this.abandonTimers.get(entry.run.id);
    if (timer) this.options.clock.clearTimeout(timer);
    this.abandonTimers.delete(entry.run.id);
    if (this.line.delete(entry.token)) {
      this.lineChanged();
      this.news.moved();
    }
    const completed = entry.run.events().at(-1)?.event === 'done';
    if (entry.startedAt !== undefined) {
      this.admission.ended(entry.run.id, completed ? this.options.clock.now() - entry.startedAt : undefined);
    }
    this.release(entry);
  }

  private release(entry: Entry): void {
    if (!this.active.delete(entry)) return;
    this.dispatch();
  }

  /**
   * Fills free slots from the head of the line. A head whose client already left (its cancellation
   * queued behind others) is cancelled now if this turn's budget allows, and never started: at the
   * release of 10,000 streams, runs of departed clients were given freed slots and started
   * (a stored message and a provider call each, ~8 % of the release's CPU) before their turn came.
   */
  private dispatch(): void {
    if (this.closed) return;
    // Starting a chat can report back (room changes) within this call: fold that into this pass.
    if (this.dispatching) {
      this.dispatchAgain = true;
      return;
    }
    this.dispatching = true;
    try {
      do {
        this.dispatchAgain = false;
        this.dispatchPass();
      } while (this.dispatchAgain);
    } finally {
      this.dispatching = false;
    }
  }

  private dispatchPass(): void {
    let started = false;
    while (this.line.size > 0 && this.admission.mayStart(this.active.size)) {
      const next: Entry = this.line.values().next().value!;
      if (next.run.signal.aborted || next.run.isFinished) {
        this.line.delete(next.token);
        this.lineChanged();
        continue;
      }
      const graceMs = this.deferredAbandons.get(next.run);
      if (graceMs !== undefined) {
        // Out of budget: the slot waits for drainAbandons, which dispatches after its slice.
        if (!this.abandons.take()) break;
        this.deferredAbandons.delete(next.run);
        this.abandon(next.run, graceMs);
        // abandon() leaves a run that is being followed again alone: it starts.
        if (this.line.get(next.token) !== next) continue;
      }
      const refusal = this.admission.checkStart(next.deadline, this.options.clock.now());
      if (refusal) {
        this.refuse(next, refusal);
        started = true;
        continue;
      }
      this.startEntry(next);
      started = true;
    }
    if (started) this.news.moved();
  }

  /** Reports the line's length to admission, and keeps the deadline check armed while chats wait. */
  private lineChanged(): void {
    this.admission.lineChanged(this.line.size);
    if (this.line.size > 0 && !this.deadlineTimer && !this.closed) {
      this.deadlineTimer = this.options.clock.setTimeout(
        this.checkDeadlines,
        this.options.deadlineCheckMs ?? DEFAULT_DEADLINE_CHECK_MS,
      );
    }
  }

  /**
   * Ends the waiting chats that admission measured cannot start in time, ABANDON_SLICE per pass:
   * told now, they can retry elsewhere or later instead of waiting out their deadline.
   */
  private readonly checkDeadlines = (): void => {
    this.deadlineTimer = undefined;
    if (this.closed) return;
    const now = this.options.clock.now();
    const late: Array<[Entry, AppError]> = [];
    let position = 0;
    for (const entry of this.line.values()) {
      position++;
      const refusal = this.admission.checkWaiting(position, entry.deadline, now);
      if (!refusal) continue;
      late.push([entry, refusal]);
      // Those behind move up by one when it leaves.
      position--;
      if (late.length >= ABANDON_SLICE) break;
    }
    for (const [entry, refusal] of late) this.refuse(entry, refusal);
    if (late.length > 0) this.news.moved();
    if (this.line.size > 0) {
      this.deadlineTimer = this.options.clock.setTimeout(
        this.checkDeadlines,
        late.length >= ABANDON_SLICE ? 0 : (this.options.deadlineCheckMs ?? DEFAULT_DEADLINE_CHECK_MS),
      );
    }
  };

  /** A waiting chat leaves the line, its run ended with `refusal` (no quota spent). */
  private refuse(entry: Entry, refusal: AppError): void {
    this.line.delete(entry.token);
    this.lineChanged();
    if (refusal.code === 'overloaded') this.counters.refusedWaiting++;
    entry.run.cancel(refusal);
  }

  private overloaded(): AppError {
    const estimatedWaitMs = this.admission.estimateWaitMs(this.line.size + 1);
    const estimate =
      estimatedWaitMs === undefined ? '' : `; the estimated wait is ${Math.ceil(estimatedWaitMs / 1000)} s`;
    return new AppError(
      'overloaded',
      `The waiting line is full (${this.line.size} waiting, ${this.active.size} running)${estimate}, retry later`,
      {
        retryAfterMs: this.admission.fullLineRetryAfterMs(),
        details: { estimatedWaitMs, waiting: this.line.size, max: this.options.maxConcurrent },
      },
    );
  }
}

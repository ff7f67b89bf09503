import { randomUUID } from 'node:crypto';
import type { Clock } from '../clock';
import { AppError, toAppError } from '../errors';
import type { Logger } from '../logger';
import type { ChatAdmission } from '../llm/admission';
import type { Run } from './run';
import { afterStreamsRead } from './after-streams-read';
import { LineNews, type WaitingPlace } from './line-news';
import { LineStats, type SseLimiterStats } from './line-stats';
import { RunGraces, type RunGraceSettings } from './run-graces';
import { WaitingDeadlines, type WaitingDeadline } from './waiting-deadlines';

export interface SseLimiterOptions extends RunGraceSettings {
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
  /** A waiting stream is told its place at least this often, ms. */
  refreshMs?: number;
  /** How often waiting chats are checked against their deadlines, ms. */
  deadlineCheckMs?: number;
  /**
   * Called as a waiting run gets its slot: true when its streams were not being read (see
   * WaitingReads), and the run starts a few ms and two event-loop turns later (afterStreamsRead), so
   * that a client that already left is noticed (and its calls held) before its first provider call.
   */
  readFirst?: (run: Run) => boolean;
  logger?: Logger;
}

export type { SseLimiterStats } from './line-stats';

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

interface Entry extends WaitingPlace, WaitingDeadline {
  readonly start: () => Promise<void>;
  readonly enqueuedAt: number;
  startedAt?: number;
  readonly onAbort: () => void;
}

const DEFAULT_DEADLINE_CHECK_MS = 1_000;

/**
 * The chat line — the one waiting line a chat passes: admission (api/llm/admission.ts) says when the
 * head may start (a stream slot free and room at the provider, as measured), and which chats must be
 * refused because they cannot start in time; this class keeps the bounded FIFO line, tells waiting
 * streams their place (`queued {position, estimatedWaitMs, token}`, by LineNews) when they join and
 * as the line moves, and starts the head the moment admission says so. Past the line's bound a chat
 * is refused before any stream (AppError overloaded, with Retry-After). Its own helpers do the
 * rest: WaitingDeadlines refuses waiting chats that can no longer start in time, and RunGraces
 * keeps the grace periods of unattended runs (a run nobody follows any more is cancelled once its
 * grace is over, which frees its place or slot).
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
  private readonly admission: ChatAdmission;
  private readonly news: LineNews;
  private readonly deadlines: WaitingDeadlines<Entry>;
  private readonly graces: RunGraces;
  private dispatching = false;
  private dispatchAgain = false;
  private closed = false;
  private readonly counts = new LineStats();

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
    // Private helpers of the line, built on its own state (like LineNews), not collaborators.
    this.deadlines = new WaitingDeadlines({
      clock: options.clock,
      admission: this.admission,
      line: this.line,
      checkMs: options.deadlineCheckMs ?? DEFAULT_DEADLINE_CHECK_MS,
      startDue: () => this.dispatch(),
      refuse: (entry, refusal) => this.refuse(entry, refusal),
      moved: () => this.news.moved(),
    });
    this.graces = new RunGraces({
      clock: options.clock,
      tokenGraceMs: options.tokenGraceMs,
      resumeGraceMs: options.resumeGraceMs,
      runHolds: options.runHolds,
      isWaiting: (run) => this.isWaiting(run),
      afterAbandons: () => this.dispatch(),
      logger: options.logger,
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
    // Before any work, so a balancer may send the same request to another instance at once.
    if (this.closed) throw new AppError('shutting_down', undefined, { retryAfterMs: 1000 });
    const startsNow = this.line.size === 0 && this.admission.mayStart(this.active.size);
    try {
      if (!startsNow && this.line.size >= this.options.queueMax)
        throw this.admission.lineFull(this.line.size, this.active.size, this.options.maxConcurrent);
      this.admission.checkArrival(startsNow ? 0 : this.line.size + 1, this.options.clock.now());
    } catch (error) {
      this.counts.refusedOnArrival();
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
    const finished = run.isFinished;
    const cameBack = this.graces.attended(run);
    if ((cameBack || options.resume) && !finished) this.counts.resumed();
  }

  detach(run: Run): void {
    this.graces.unattended(run);
  }

  stats(): SseLimiterStats {
    const startsNow = this.line.size === 0 && this.admission.mayStart(this.active.size);
    return this.counts.stats({
      active: this.active.size,
      max: this.options.maxConcurrent,
      waiting: this.line.size,
      currentEstimatedWaitMs: startsNow ? 0 : (this.admission.estimateWaitMs(this.line.size + 1) ?? null),
      meanRunMs: this.admission.meanRunMs(),
    });
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
    this.deadlines.close();
    this.graces.close();
  }

  /** `lateDeadline`: admission starts it late (its calls go first, api/llm/admission.ts). */
  private startEntry(entry: Entry, lateDeadline?: number): void {
    const now = this.options.clock.now();
    const waited = this.line.delete(entry.token);
    if (waited) this.lineChanged();
    this.active.add(entry);
    entry.startedAt = now;
    this.admission.started(entry.run.id, waited, lateDeadline, entry.deadline);
    // A run told a place went through the line: its wait counts in the mean.
    this.counts.served(entry.toldPosition > 0 ? now - entry.enqueuedAt : undefined);
    if (entry.toldPosition > 0 && this.options.readFirst?.(entry.run)) {
      afterStreamsRead(this.options.clock, () => this.runStart(entry));
      return;
    }
    this.runStart(entry);
  }

  private runStart(entry: Entry): void {
    // Its client left while it waited to start (readFirst) and its cancellation is queued
    // behind others: cancelled now, before any call (at most a slot's worth per start).
    this.graces.abandonDeferred(entry.run, false);
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
    // Handed over to another instance (durable chats): it goes on there, it was not cancelled.
    const cancelled = !entry.run.handedOver;
    if (this.line.delete(entry.token)) {
      if (cancelled) this.counts.cancelled();
      this.lineChanged();
      this.news.moved();
    } else if (this.active.has(entry)) {
      if (cancelled) this.counts.cancelled();
      // The slot goes to the next in line at once; the cancelled run winds down on its own.
      this.release(entry);
    }
  }

  private onFinished(entry: Entry): void {
    entry.run.signal.removeEventListener('abort', entry.onAbort);
    this.graces.ended(entry.run);
    this.byToken.delete(entry.token);
    this.byRun.delete(entry.run.id);
    if (this.line.delete(entry.token)) {
      this.lineChanged();
      this.news.moved();
    }
    if (entry.startedAt !== undefined) {
      this.admission.ended(entry.run.id, entry.run.events().at(-1)?.event === 'done');
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
    while (this.line.size > 0) {
      const next: Entry = this.line.values().next().value!;
      // Without room the head starts (late) only at its last chance.
      const lastChance = this.admission.mayStart(this.active.size)
        ? undefined
        : (this.deadlines.lastChance(next, this.active.size) ?? null);
      if (lastChance === null) break;
      if (next.run.signal.aborted || next.run.isFinished) {
        this.line.delete(next.token);
        this.lineChanged();
        continue;
      }
      const abandoned = this.graces.abandonDeferred(next.run, true);
      // Out of budget: the slot waits for the graces' next slice, which dispatches after it.
      if (abandoned === 'later') break;
      // An abandon leaves a run that is being followed again alone: it starts.
      if (abandoned === 'abandoned' && this.line.get(next.token) !== next) continue;
      const decision = lastChance ?? this.admission.checkStart(next.deadline, this.options.clock.now());
      if (!decision.start) {
        this.refuse(next, decision.refusal);
        started = true;
        continue;
      }
      this.startEntry(next, decision.lateDeadline);
      started = true;
    }
    if (started) this.news.moved();
  }

  /** Reports the line's length to admission, and keeps the deadline check armed while chats wait. */
  private lineChanged(): void {
    this.admission.lineChanged(this.line.size);
    this.deadlines.lineChanged();
  }

  /** A waiting chat leaves the line, its run ended with `refusal` (no quota spent). */
  private refuse(entry: Entry, refusal: AppError): void {
    this.line.delete(entry.token);
    this.lineChanged();
    if (refusal.code === 'overloaded') this.counts.refusedWhileWaiting();
    entry.run.cancel(refusal);
  }
}

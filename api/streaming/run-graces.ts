import type { Clock, TimerHandle } from '../clock';
import { AppError } from '../errors';
import type { Logger } from '../logger';
import type { RunHolds } from '../llm/llm-gateway';
import type { Run } from './run';
import { TurnBudget } from './turn-budget';

/**
 * Runs cancelled per event-loop turn when their streams leave without a grace period; the rest
 * wait for the next turns. Thousands of clients hanging up at once (the sse-capacity benchmark's
 * release) otherwise cancelled every run in one pass and held the loop for most of a second.
 */
export const ABANDON_SLICE = 100;

/** The grace settings, as the chat line's options carry them (SseLimiterOptions extends these). */
export interface RunGraceSettings {
  /** How long a waiting run outlives its last listener (its token stays valid): SSE_TOKEN_GRACE_MS. */
  tokenGraceMs: number;
  /** How long a started run outlives its last listener: SSE_RESUME_GRACE_MS. */
  resumeGraceMs: number;
  /**
   * Holds an unattended run's LLM calls (the scheduler): a run nobody listens to starts no new call
   * during its grace, so a client that left costs at most the call in flight when it left.
   */
  runHolds?: RunHolds;
}

export interface RunGracesOptions extends RunGraceSettings {
  clock: Clock;
  /** Is `run` waiting in the line (its grace is then the token's)? The limiter's answer. */
  isWaiting(run: Run): boolean;
  /**
   * Called after each slice of deferred cancellations: slots the line left free for a run whose
   * cancellation was queued can be filled now.
   */
  afterAbandons(): void;
  logger?: Logger;
}

/** What `abandonDeferred` did with a run's queued cancellation. */
export type DeferredAbandon = 'none' | 'abandoned' | 'later';

/**
 * The grace periods of unattended runs, for the chat line (SseLimiter): a run whose last stream
 * left has its LLM calls held and is cancelled once its grace is over, unless a stream comes back
 * first. A grace of 0 cancels at once, at most ABANDON_SLICE runs per event-loop turn; the rest are
 * deferred to the next turns. The line asks about a deferred cancellation before it starts a run,
 * so a run whose client already left never gets a slot's call.
 */
export class RunGraces {
  private readonly abandonTimers = new Map<string, TimerHandle>();
  /** Runs whose LLM calls are held because nobody listens. */
  private readonly heldRuns = new Set<string>();
  private readonly abandons: TurnBudget;
  /** Runs whose cancellation waits for a later turn (past ABANDON_SLICE in one turn), with their grace. */
  private readonly deferredAbandons = new Map<Run, number>();
  private drainScheduled = false;
  /**
   * One cancellation reason per grace period, shared by every run abandoned with it: an AppError
   * per run captured a stack trace at the release of 10,000 streams (2.5 % of its CPU), and each
   * stayed alive with its finished run for the retention time (~1 KB a run).
   */
  private readonly abandonReasons = new Map<number, AppError>();

  constructor(private readonly options: RunGracesOptions) {
    this.abandons = new TurnBudget(ABANDON_SLICE, options.clock);
  }

  /**
   * A stream follows `run` (again): its grace, held calls and queued cancellation end. Returns
   * true when a stream came back to it during its grace.
   */
  attended(run: Run): boolean {
    const timer = this.abandonTimers.get(run.id);
    if (timer) {
      this.options.clock.clearTimeout(timer);
      this.abandonTimers.delete(run.id);
    }
    this.deferredAbandons.delete(run);
    this.unhold(run);
    return timer !== undefined;
  }

  /** `run`'s last stream may have left: if nobody follows it, its calls are held and its grace starts. */
  unattended(run: Run): void {
    if (run.isFinished || run.signal.aborted || run.listenerCount > 0 || this.abandonTimers.has(run.id))
      return;
    const graceMs = this.options.isWaiting(run) ? this.options.tokenGraceMs : this.options.resumeGraceMs;
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

  /**
   * Cancels `run` now if its cancellation was queued for a later turn. `withinBudget`: only while
   * this turn's budget lasts ('later' when it is spent: it stays queued).
   */
  abandonDeferred(run: Run, withinBudget: boolean): DeferredAbandon {
    const graceMs = this.deferredAbandons.get(run);
    if (graceMs === undefined) return 'none';
    if (withinBudget && !this.abandons.take()) return 'later';
    this.deferredAbandons.delete(run);
    this.abandon(run, graceMs);
    return 'abandoned';
  }

  /** `run` finished: its grace (timer or queued cancellation) is moot. Its hold ends by itself. */
  ended(run: Run): void {
    this.deferredAbandons.delete(run);
    const timer = this.abandonTimers.get(run.id);
    if (timer) this.options.clock.clearTimeout(timer);
    this.abandonTimers.delete(run.id);
  }

  /** Stops every grace timer (shutdown: the owner cancels the runs itself). */
  close(): void {
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
      this.options.clock.defer(this.drainAbandons);
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
      this.options.clock.defer(this.drainAbandons);
    }
    // Slots the line left free for a run whose cancellation was queued (see SseLimiter.dispatch).
    this.options.afterAbandons();
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
}

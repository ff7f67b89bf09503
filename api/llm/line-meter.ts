import type { Clock } from '../clock';
import { percentile } from './rolling-histogram';

/** Starts from a waiting line that the drain rate is measured over, at most. */
const DRAIN_SAMPLES = 64;
/** Completed chats whose run time speaks for the load now, at most. */
const RUN_SAMPLES = 200;

export interface LineMeterOptions {
  clock: Clock;
  /**
   * How old a measurement may be and still speak for the line now, ms: a chat waiting now cares
   * about how the line moved within about one chat deadline (CHAT_TIMEOUT_MS), not an hour ago.
   */
  maxAgeMs: number;
}

/**
 * What the chat line really did, measured (docs/ARCHITECTURE.md, "Admission"): how fast it drains
 * while chats wait in it, and how long a started chat takes to finish. Nothing here is a prior: before
 * a measurement exists the answers are `undefined`, and admission then lets chats wait instead of
 * refusing them on a guess.
 *
 * The drain rate counts starts over *busy* time only — time during which the line was not empty —
 * so an idle hour does not read as a slow line, and a line that stalls (a paused queue, an outage)
 * reads slower the longer it stalls: the time since the last start counts too.
 */
export class LineMeter {
  private readonly clock: Clock;
  /** Busy time accumulated before `busySince`, ms. */
  private busyMs = 0;
  /** When the line last became non-empty; undefined while it is empty. */
  private busySince: number | undefined;
  /** Starts made while chats waited: wall time and busy time at that start. */
  private readonly drains: Array<{ at: number; busyAt: number }> = [];
  /** Completed chats' run times (start → done), oldest first. */
  private readonly runs: Array<{ at: number; ms: number }> = [];
  private sortedRuns?: number[];

  constructor(private readonly options: LineMeterOptions) {
    this.clock = options.clock;
  }

  /** The line's length changed (a chat joined, started or left). */
  lineLength(waiting: number): void {
    const now = this.clock.now();
    if (waiting > 0 && this.busySince === undefined) this.busySince = now;
    else if (waiting === 0 && this.busySince !== undefined) {
      this.busyMs += now - this.busySince;
      this.busySince = undefined;
    }
  }

  /** A chat left the head of a non-empty line to start. */
  drained(): void {
    const now = this.clock.now();
    this.drains.push({ at: now, busyAt: this.busyNow(now) });
    if (this.drains.length > DRAIN_SAMPLES) this.drains.shift();
  }

  /** A started chat completed (`done`) after `runMs`. Failed chats teach nothing about run time. */
  completed(runMs: number): void {
    if (!Number.isFinite(runMs) || runMs < 0) return;
    this.runs.push({ at: this.clock.now(), ms: runMs });
    if (this.runs.length > RUN_SAMPLES) this.runs.shift();
    this.sortedRuns = undefined;
  }

  /**
   * Chats that leave the line per ms while it is not empty, over the recent starts; undefined until
   * two have been seen. It counts the starts over the busy time from the oldest of them to now, so
   * it slightly favours the line (the oldest start counts whole) and decays while nothing starts.
   */
  drainRatePerMs(): number | undefined {
    const now = this.clock.now();
    this.dropOld(this.drains, now);
    if (this.drains.length < 2) return undefined;
    const spanMs = this.busyNow(now) - this.drains[0].busyAt;
    return spanMs > 0 ? this.drains.length / spanMs : undefined;
  }

  /** How many recent starts the drain rate rests on. */
  drainSamples(): number {
    this.dropOld(this.drains, this.clock.now());
    return this.drains.length;
  }

  /** The `fraction` percentile of recent completed chats' run times, ms; undefined before one completed. */
  runTimeMs(fraction: number): number | undefined {
    const runs = this.recentRuns();
    if (runs.length === 0) return undefined;
    this.sortedRuns ??= runs.map((run) => run.ms).sort((a, b) => a - b);
    return percentile(this.sortedRuns, fraction);
  }

  /** Mean of recent completed chats' run times, ms; undefined before one completed. */
  meanRunTimeMs(): number | undefined {
    const runs = this.recentRuns();
    return runs.length === 0 ? undefined : runs.reduce((total, run) => total + run.ms, 0) / runs.length;
  }

  /** The completed runs still young enough to speak for the line (the sorted copy goes with the old). */
  private recentRuns(): ReadonlyArray<{ at: number; ms: number }> {
    if (this.dropOld(this.runs, this.clock.now())) this.sortedRuns = undefined;
    return this.runs;
  }

  private busyNow(now: number): number {
    return this.busyMs + (this.busySince === undefined ? 0 : now - this.busySince);
  }

  /** Drops samples older than maxAgeMs; true when any went. */
  private dropOld(samples: Array<{ at: number }>, now: number): boolean {
    const since = now - this.options.maxAgeMs;
    let stale = 0;
    while (stale < samples.length && samples[stale].at < since) stale++;
    if (stale > 0) samples.splice(0, stale);
    return stale > 0;
  }
}

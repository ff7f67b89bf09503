import type { Clock } from '../clock';
import { byRunTime, runTimeQuantile, type RunObservation } from './run-time-survival';

/** Starts from a waiting line that the drain rate is measured over, at most. */
const DRAIN_SAMPLES = 64;
/**
 * Ended chats whose run time speaks for the load now, at most: enough that, beside every chat
 * still running, the ended ones of the same recent past are all there (the estimator weighs the two
 * together; keeping only a few ended ones beside many running would read every run as longer).
 */
const RUN_SAMPLES = 4_096;

/** Completed chats whose service time is kept, at most. */
const SERVICE_SAMPLES = 512;
/**
 * Completed chats measured before a service-time quantile is trusted: its 99th percentile is then
 * the longest of them, and chats differ in kind (a long answer, a tool round, a revision). With
 * five, seed 2's w04 started three late chats that then ran out of time: none of the five was a
 * long one.
 */
const SERVICE_MIN_SAMPLES = 10;

export interface LineMeterOptions {
  clock: Clock;
  /**
   * How old a measurement may be and still speak for the line now, ms: a chat waiting now cares
   * about how the line moved within about one chat deadline (CHAT_TIMEOUT_MS), not an hour ago.
   */
  maxAgeMs: number;
  /**
   * A chat completed here, with its service time and calls: in a cluster the other instances hear
   * it (a chat's own work takes as long wherever it runs), so each has its samples sooner.
   */
  onServed?: (served: ServiceSample) => void;
}

/** A completed chat's service time (run time less the time it was blocked) and calls. */
export interface ServiceSample {
  serviceMs: number;
  calls: number;
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
  /** Ended chats, oldest first: when, their run time (start → end), whether they completed. */
  private readonly runs: Array<{ at: number; ms: number; completed: boolean }> = [];
  private sortedRuns?: RunObservation[];
  /** Completed chats, oldest first: their service time (run time − time blocked) and calls. */
  private readonly services: Array<{ at: number; serviceMs: number; calls: number }> = [];
  /** Chats running now and when each started; a Map keeps start order, so the oldest come first. */
  private readonly running = new Map<string, number>();
  /** Quantiles asked at one instant with nothing started or ended since are answered once. */
  private readonly quantiles = new Map<number, number | undefined>();
  private readonly serviceAnswers = new Map<number, { serviceMs: number; calls: number } | undefined>();
  private quantilesAt = Number.NaN;

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

  /** A chat started running. */
  runStarted(runId: string): void {
    this.running.set(runId, this.clock.now());
    this.runsChanged();
  }

  /**
   * A running chat ended: `completed` (`done`), or not (timed out, failed, cancelled) — then its run
   * time is only known to be at least what it ran, and it counts so (censored), not as nothing: the
   * chats that time out are exactly the long ones.
   */
  runEnded(runId: string, completed: boolean, calls?: { blockedMs: number; calls: number }): void {
    const startedAt = this.running.get(runId);
    if (startedAt === undefined) return;
    this.running.delete(runId);
    const now = this.clock.now();
    this.runs.push({ at: now, ms: now - startedAt, completed });
    if (this.runs.length > RUN_SAMPLES) this.runs.shift();
    if (completed && calls) {
      const served = { serviceMs: Math.max(0, now - startedAt - calls.blockedMs), calls: calls.calls };
      this.keepService(served, now);
      this.options.onServed?.(served);
    }
    this.sortedRuns = undefined;
    this.runsChanged();
  }

  /** A chat completed on another instance of the cluster (LineMeterOptions.onServed there). */
  servedElsewhere(served: ServiceSample): void {
    this.keepService(served, this.clock.now());
    this.runsChanged();
  }

  private keepService(served: ServiceSample, now: number): void {
    this.services.push({ at: now, ...served });
    if (this.services.length > SERVICE_SAMPLES) this.services.shift();
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

  /**
   * The `fraction` quantile of run time (start → done) over recent chats, counting the ones still
   * running and the ones that ended without completing as "at least this long" (run-time-survival.ts);
   * undefined before a chat completed.
   */
  runTimeMs(fraction: number): number | undefined {
    const now = this.clock.now();
    if (this.dropOld(this.runs, now)) this.sortedRuns = undefined;
    this.atInstant(now);
    if (this.quantiles.has(fraction)) return this.quantiles.get(fraction);
    this.sortedRuns ??= this.runs.map(({ ms, completed }) => ({ ms, completed })).sort(byRunTime);
    // Running chats in start order have falling elapsed times: reversed, they are sorted too.
    const running: RunObservation[] = [];
    for (const startedAt of this.running.values()) running.push({ ms: now - startedAt, completed: false });
    running.reverse();
    const quantile = runTimeQuantile(mergeSorted(this.sortedRuns, running), fraction);
    this.quantiles.set(fraction, quantile);
    return quantile;
  }

  /**
   * The `fraction` quantile of recent completed chats' service time — run time less the time a
   * call of theirs waited for a slot with none in flight (run-ledger.ts) — and of their calls per
   * chat; undefined until SERVICE_MIN_SAMPLES chats completed.
   */
  serviceQuantiles(fraction: number): { serviceMs: number; calls: number } | undefined {
    // Asked for every waiting chat in a deadline pass: answered once per instant, like runTimeMs.
    const now = this.clock.now();
    this.atInstant(now);
    if (this.serviceAnswers.has(fraction)) return this.serviceAnswers.get(fraction);
    this.dropOld(this.services, now);
    let answer: { serviceMs: number; calls: number } | undefined;
    if (this.services.length >= SERVICE_MIN_SAMPLES) {
      const at = (values: number[]) =>
        values.sort((a, b) => a - b)[Math.min(values.length - 1, Math.ceil(fraction * values.length) - 1)];
      answer = {
        serviceMs: at(this.services.map((sample) => sample.serviceMs)),
        calls: at(this.services.map((sample) => sample.calls)),
      };
    }
    this.serviceAnswers.set(fraction, answer);
    return answer;
  }

  /** Mean run time of recent completed chats, ms; undefined before one completed. */
  meanRunTimeMs(): number | undefined {
    if (this.dropOld(this.runs, this.clock.now())) this.sortedRuns = undefined;
    let total = 0;
    let count = 0;
    for (const run of this.runs) {
      if (!run.completed) continue;
      total += run.ms;
      count++;
    }
    return count === 0 ? undefined : total / count;
  }

  /** Answers cached for an earlier instant go (a new instant may have aged samples out). */
  private atInstant(now: number): void {
    if (now === this.quantilesAt) return;
    this.quantiles.clear();
    this.serviceAnswers.clear();
    this.quantilesAt = now;
  }

  private runsChanged(): void {
    this.quantilesAt = Number.NaN;
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

/** Two lists sorted by byRunTime, merged into one. */
function mergeSorted(a: readonly RunObservation[], b: readonly RunObservation[]): RunObservation[] {
  const merged: RunObservation[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (j >= b.length || (i < a.length && byRunTime(a[i], b[j]) <= 0)) merged.push(a[i++]);
    else merged.push(b[j++]);
  }
  return merged;
}

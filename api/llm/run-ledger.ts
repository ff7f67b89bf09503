import type { Clock } from '../clock';

/**
 * What each running chat's calls did at the provider, measured for admission's late starts
 * (api/llm/admission.ts, docs/ARCHITECTURE.md "Admission"). Every endpoint's request queue reports
 * here (one ledger for all of them), so a chat whose agents call different endpoints is seen whole.
 *
 * - **Blocked time**: the wall time during which a chat had a call waiting for a slot and none in
 *   flight — time it lost to the queue. A chat's run time minus it is its *service time*: what its
 *   own calls, tools and work take when nothing is ahead of them. A call waiting beside one in
 *   flight is not counted (the chat was progressing), so the service time errs long, never short.
 * - **Start gaps**: at each endpoint, the time between two starts while calls waited — how long a
 *   call at the very front of the line waits for the next start, whatever binds (RPM spread,
 *   concurrency and the calls holding it, a hold). In a cluster it errs long (a late call takes
 *   the next start of all the instances, each instance counts only its own); we tried shorter
 *   bounds (the first class's waits, late calls' own waits) and they let late chats start that a
 *   few long calls holding the only slot then made run out of time.
 * - **Late chats**: chats admission started late (less time left than recent chats took); their
 *   calls go before every class, earliest deadline first (queue-lanes.ts).
 */
interface RunCalls {
  queued: number;
  inFlight: number;
  /** Calls that got a slot. */
  started: number;
  blockedMs: number;
  /** Since when the run is blocked (a call queued, none in flight); undefined when it is not. */
  blockedSince?: number;
  /** Set for a late chat: its deadline, the order of its calls among the late ones. */
  lateDeadline?: number;
}

/** How many recent start gaps each endpoint keeps. */
const GAP_SAMPLES = 256;
/** Start gaps measured before their quantiles are trusted (admission's figures all need ten). */
const GAP_MIN_SAMPLES = 10;

interface EndpointStarts {
  gaps: Array<{ at: number; ms: number }>;
  /** The last start after which calls still waited; undefined when none did. */
  lastAt?: number;
}

export interface RunLedgerOptions {
  clock: Pick<Clock, 'now'>;
  /** How old a start gap may be and still speak for the queue now, ms (about a chat deadline). */
  maxAgeMs: number;
}

export class RunLedger {
  private readonly runs = new Map<string, RunCalls>();
  private lateCount = 0;
  private readonly endpoints = new Map<string, EndpointStarts>();
  /** startGapMs's answers at `gapAnswersAt` (asked for every waiting chat in a deadline pass). */
  private readonly gapAnswers = new Map<number, number | undefined>();
  private gapAnswersAt = Number.NaN;

  constructor(private readonly options: RunLedgerOptions) {}

  // ---- reported by admission ----

  /** A chat started; `lateDeadline` when it started late (its calls then go first). */
  chatStarted(runId: string, lateDeadline?: number): void {
    if (this.runs.has(runId)) return;
    this.runs.set(runId, { queued: 0, inFlight: 0, started: 0, blockedMs: 0, lateDeadline });
    if (lateDeadline !== undefined) this.lateCount++;
  }

  /** The chat ended: the time it was blocked and how many calls it started; undefined if unknown. */
  chatEnded(runId: string): { blockedMs: number; calls: number } | undefined {
    const run = this.runs.get(runId);
    if (!run) return undefined;
    this.unblock(run);
    this.runs.delete(runId);
    if (run.lateDeadline !== undefined) this.lateCount--;
    return { blockedMs: run.blockedMs, calls: run.started };
  }

  /** The deadline of a late chat (its calls go first, earliest deadline first); else undefined. */
  lateDeadline(runId: string | undefined): number | undefined {
    return runId === undefined ? undefined : this.runs.get(runId)?.lateDeadline;
  }

  /** Late chats running now. */
  lateRunning(): number {
    return this.lateCount;
  }

  /**
   * The `fraction` quantile of the gap between two starts while calls waited, the largest over the
   * endpoints (a late chat may call any of them): how long a call at the front waits for the next
   * start. Undefined until an endpoint measured GAP_MIN_SAMPLES.
   */
  startGapMs(fraction: number): number | undefined {
    const now = this.options.clock.now();
    if (now !== this.gapAnswersAt) {
      this.gapAnswers.clear();
      this.gapAnswersAt = now;
    }
    if (this.gapAnswers.has(fraction)) return this.gapAnswers.get(fraction);
    let largest: number | undefined;
    for (const starts of this.endpoints.values()) {
      const gaps = this.fresh(starts.gaps, now);
      if (gaps.length < GAP_MIN_SAMPLES) continue;
      const sorted = gaps.map((gap) => gap.ms).sort((a, b) => a - b);
      const value = sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)];
      largest = Math.max(largest ?? 0, value);
    }
    this.gapAnswers.set(fraction, largest);
    return largest;
  }

  // ---- reported by the request queues ----

  /** A call of `runId` began waiting for a slot. */
  callQueued(runId: string | undefined): void {
    const run = this.run(runId);
    if (!run) return;
    run.queued++;
    if (run.inFlight === 0) run.blockedSince ??= this.options.clock.now();
  }

  /** A waiting call got its slot at `endpoint`; `othersWaiting`: calls still wait there. */
  callStarted(runId: string | undefined, endpoint: string, othersWaiting: boolean): void {
    this.recordGap(endpoint, othersWaiting);
    const run = this.run(runId);
    if (!run) return;
    run.queued = Math.max(0, run.queued - 1);
    run.inFlight++;
    run.started++;
    this.unblock(run);
  }

  /** A waiting call left unstarted (timed out, aborted, dropped). */
  callDropped(runId: string | undefined): void {
    const run = this.run(runId);
    if (!run) return;
    run.queued = Math.max(0, run.queued - 1);
    if (run.queued === 0) this.unblock(run);
  }

  /** A call in flight ended. */
  callEnded(runId: string | undefined): void {
    const run = this.run(runId);
    if (!run) return;
    run.inFlight = Math.max(0, run.inFlight - 1);
    if (run.inFlight === 0 && run.queued > 0) run.blockedSince ??= this.options.clock.now();
  }

  private run(runId: string | undefined): RunCalls | undefined {
    return runId === undefined ? undefined : this.runs.get(runId);
  }

  private unblock(run: RunCalls): void {
    if (run.blockedSince === undefined) return;
    run.blockedMs += this.options.clock.now() - run.blockedSince;
    run.blockedSince = undefined;
  }

  /**
   * A start at `endpoint`: the gap since its previous start counts only when calls were waiting
   * through it (an idle gap says nothing about how soon a waiting call starts).
   */
  private recordGap(endpoint: string, othersWaiting: boolean): void {
    const now = this.options.clock.now();
    let starts = this.endpoints.get(endpoint);
    if (!starts) {
      starts = { gaps: [] };
      this.endpoints.set(endpoint, starts);
    }
    if (starts.lastAt !== undefined) {
      keep(starts.gaps, { at: now, ms: now - starts.lastAt });
      this.gapAnswersAt = Number.NaN;
    }
    starts.lastAt = othersWaiting ? now : undefined;
  }

  /** `samples` without the ones older than maxAgeMs (dropped for good). */
  private fresh(samples: Array<{ at: number; ms: number }>, now: number): Array<{ at: number; ms: number }> {
    while (samples.length > 0 && now - samples[0].at > this.options.maxAgeMs) samples.shift();
    return samples;
  }
}

/** Appends a gap, keeping the newest GAP_SAMPLES. */
function keep(gaps: Array<{ at: number; ms: number }>, gap: { at: number; ms: number }): void {
  gaps.push(gap);
  if (gaps.length > GAP_SAMPLES) gaps.shift();
}

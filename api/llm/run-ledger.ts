import type { Clock } from '../clock';
import type { PriorityClass } from './priority-class';
import { fresh, keep, MIN_SAMPLES, quantile, type TimedSample } from './recent-samples';
import { StartGaps } from './start-gaps';

/**
 * What each running chat's calls did at the provider, measured for admission's late starts
 * (api/llm/admission.ts, docs/ARCHITECTURE.md "Admission"). Every endpoint's request queue reports
 * here (one ledger for all of them), so a chat whose agents call different endpoints is seen whole.
 *
 * - **Blocked time**: the wall time during which a chat had a call waiting for a slot and none in
 *   flight — time it lost to the queue. A chat's run time minus it is its *service time*: what its
 *   own calls, tools and work take when nothing is ahead of them. A call waiting beside one in
 *   flight is not counted (the chat was progressing), so the service time errs long, never short.
 * - **Start gaps** (start-gaps.ts): at each endpoint, the time between two starts while calls
 *   waited — how long a call at the very front of the line waits for the next start.
 * - **Late chats**: chats admission started late (less time left than recent chats took); their
 *   calls go before every class, earliest deadline first (queue-lanes.ts). In a cluster
 *   lateRunning() counts the other instances' too (api/cluster/admission-news.ts): their calls
 *   take the front of the one order in Redis.
 * - **Chats falling behind** become late too. A chat started on time can still fall behind: the
 *   run times admission measured came from a lighter moment, or its calls waited behind classes
 *   ranked above them. At each call it asks for: the wait calls of that class recently had (their
 *   95th percentile), then its own pace so far (time since it started per call started) over the
 *   calls it may still make (recent chats' 99th percentile, at least this one); a chat that would
 *   finish past its deadline so goes late from that call on. The queue asks again while a call of
 *   the chat waits (behind-while-waiting.ts), the time waited counting in its pace. Its own
 *   measured pace and its class's measured waits, not a forecast: a chat on pace keeps its class.
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
  /** The chat's deadline (late or not); undefined when it has none. */
  deadline?: number;
  startedAt: number;
}

export interface RunLedgerOptions {
  clock: Pick<Clock, 'now'>;
  /** How old a start gap may be and still speak for the queue now, ms (about a chat deadline). */
  maxAgeMs: number;
  /**
   * How many calls recent chats made, at the `fraction` quantile (the line meter's measure);
   * undefined until measured. Without it no chat is moved late for falling behind.
   */
  callsPerChat?: (fraction: number) => number | undefined;
  /**
   * In a cluster: late chats running on the other instances, the calls each has started. Their
   * calls go before every class of every instance too, so a chat started late here waits behind
   * them as behind this one's.
   */
  lateElsewhere?: () => readonly number[];
  /**
   * A chat here went late (started late or fell behind), with its deadline and the calls it has
   * started: the others hear it.
   */
  onLate?: (runId: string, deadline: number, calls: number) => void;
  /** A late chat here started a call. */
  onLateCall?: (runId: string) => void;
  /** A late chat here ended. */
  onLateEnded?: (runId: string) => void;
}

/** The calls a chat falling behind may still make: nearly as many as any recent chat made. */
const REMAINING_CALLS_PERCENTILE = 0.99;
/** The wait a chat's next call can expect in its class, at most nearly always. */
const CLASS_WAIT_PERCENTILE = 0.95;

export class RunLedger {
  private readonly runs = new Map<string, RunCalls>();
  private lateCount = 0;
  private readonly gaps: StartGaps;
  /** Recent waits for a slot, per class (the newest RECENT_SAMPLES of each). */
  private readonly classWaits = new Map<PriorityClass, TimedSample[]>();
  /** classWaitMs's answers at `answersCachedAt`, per class. */
  private readonly classWaitAnswers = new Map<PriorityClass, number | undefined>();
  private answersCachedAt = Number.NaN;

  constructor(private readonly options: RunLedgerOptions) {
    this.gaps = new StartGaps({ clock: options.clock, maxAgeMs: options.maxAgeMs });
  }

  // ---- reported by admission ----

  /**
   * A chat started; `lateDeadline` when it started late (its calls then go first); `deadline`, the
   * deadline of any chat, for the pace check that moves a chat falling behind late.
   */
  chatStarted(runId: string, lateDeadline?: number, deadline = lateDeadline): void {
    if (this.runs.has(runId)) return;
    this.runs.set(runId, {
      queued: 0,
      inFlight: 0,
      started: 0,
      blockedMs: 0,
      lateDeadline,
      deadline,
      startedAt: this.options.clock.now(),
    });
    if (lateDeadline !== undefined) this.wentLate(runId, lateDeadline);
  }

  /** The chat ended: the time it was blocked and how many calls it started; undefined if unknown. */
  chatEnded(runId: string): { blockedMs: number; calls: number } | undefined {
    const run = this.runs.get(runId);
    if (!run) return undefined;
    this.unblock(run);
    this.runs.delete(runId);
    if (run.lateDeadline !== undefined) {
      this.lateCount--;
      this.options.onLateEnded?.(runId);
    }
    return { blockedMs: run.blockedMs, calls: run.started };
  }

  /**
   * The deadline of a late chat (its calls go first, earliest deadline first); else undefined.
   * Asked as each call of the chat queues: a chat whose own pace would finish past its deadline
   * goes late here (see "Chats falling behind" above).
   */
  lateDeadline(runId: string | undefined, callClass?: PriorityClass): number | undefined {
    const run = this.run(runId);
    if (!run) return undefined;
    if (run.lateDeadline === undefined && run.deadline !== undefined && this.fallingBehind(run, callClass)) {
      run.lateDeadline = run.deadline;
      this.wentLate(runId!, run.deadline, run.started);
    }
    return run.lateDeadline;
  }

  /** Late chats running now, in the whole cluster. */
  lateRunning(): number {
    return this.lateCount + (this.options.lateElsewhere?.().length ?? 0);
  }

  /**
   * The calls the late chats running now, here and elsewhere, may still start if each makes
   * `callsPerChat` in all, less those each has started. Each of them goes before any call of a
   * chat started now, one start each.
   */
  lateCallsLeft(callsPerChat: number): number {
    let left = 0;
    for (const started of this.options.lateElsewhere?.() ?? []) left += Math.max(0, callsPerChat - started);
    if (this.lateCount === 0) return left;
    for (const run of this.runs.values()) {
      if (run.lateDeadline !== undefined) left += Math.max(0, callsPerChat - run.started);
    }
    return left;
  }

  private wentLate(runId: string, deadline: number, calls = 0): void {
    this.lateCount++;
    this.options.onLate?.(runId, deadline, calls);
  }

  /** The `fraction` quantile of the start gaps, the largest over the endpoints (start-gaps.ts). */
  startGapMs(fraction: number): number | undefined {
    return this.gaps.quantileMs(fraction);
  }

  /** The mean start gap, the largest over the endpoints (start-gaps.ts). */
  meanStartGapMs(): number | undefined {
    return this.gaps.meanMs();
  }

  // ---- reported by the cluster (the load channel) ----

  /** `count` calls of the cluster's started at `endpoint` at `redisAt` (StartGaps.clusterStarted). */
  clusterStarted(endpoint: string, redisAt: number, count: number, waiting: boolean): void {
    this.gaps.clusterStarted(endpoint, redisAt, count, waiting);
  }

  // ---- reported by the request queues ----

  /** A call of `callClass` got its slot after waiting `waitedMs`. */
  callWaited(callClass: PriorityClass, waitedMs: number): void {
    const now = this.options.clock.now();
    let waits = this.classWaits.get(callClass);
    if (!waits) {
      waits = [];
      this.classWaits.set(callClass, waits);
    }
    keep(waits, { at: now, ms: waitedMs });
    this.classWaitAnswers.delete(callClass);
  }

  /** A call of `runId` began waiting for a slot. */
  callQueued(runId: string | undefined): void {
    const run = this.run(runId);
    if (!run) return;
    run.queued++;
    if (run.inFlight === 0) run.blockedSince ??= this.options.clock.now();
  }

  /** A waiting call got its slot at `endpoint`; `othersWaiting`: calls still wait there. */
  callStarted(runId: string | undefined, endpoint: string, othersWaiting: boolean): void {
    this.gaps.started(endpoint, othersWaiting);
    const run = this.run(runId);
    if (!run) return;
    run.queued = Math.max(0, run.queued - 1);
    run.inFlight++;
    run.started++;
    if (run.lateDeadline !== undefined) this.options.onLateCall?.(runId!);
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

  /**
   * After the wait its class's calls recently had, and at its pace so far, would the chat finish
   * the calls it may still make past its deadline?
   */
  private fallingBehind(run: RunCalls, callClass: PriorityClass | undefined): boolean {
    if (run.deadline === undefined || run.started === 0) return false;
    const calls = this.options.callsPerChat?.(REMAINING_CALLS_PERCENTILE);
    if (calls === undefined) return false;
    const now = this.options.clock.now();
    const paceMs = (now - run.startedAt) / run.started;
    const remaining = Math.max(1, calls - run.started);
    const waitMs = callClass === undefined ? 0 : (this.classWaitMs(callClass, now) ?? 0);
    return now + waitMs + remaining * paceMs > run.deadline;
  }

  /** The CLASS_WAIT_PERCENTILE of `callClass`'s recent waits; undefined under MIN_SAMPLES. */
  private classWaitMs(callClass: PriorityClass, now: number): number | undefined {
    this.answersAt(now);
    if (this.classWaitAnswers.has(callClass)) return this.classWaitAnswers.get(callClass);
    const waits = fresh(this.classWaits.get(callClass) ?? [], now, this.options.maxAgeMs);
    const answer = waits.length < MIN_SAMPLES ? undefined : quantile(waits, CLASS_WAIT_PERCENTILE);
    this.classWaitAnswers.set(callClass, answer);
    return answer;
  }

  /** Cached answers hold for one instant (asked for every waiting chat, every queued call). */
  private answersAt(now: number): void {
    if (now === this.answersCachedAt) return;
    this.classWaitAnswers.clear();
    this.answersCachedAt = now;
  }

  private run(runId: string | undefined): RunCalls | undefined {
    return runId === undefined ? undefined : this.runs.get(runId);
  }

  private unblock(run: RunCalls): void {
    if (run.blockedSince === undefined) return;
    run.blockedMs += this.options.clock.now() - run.blockedSince;
    run.blockedSince = undefined;
  }
}

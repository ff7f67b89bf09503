import type { Clock } from '../clock';
import type { PriorityClass } from './priority-class';

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
 *   concurrency and the calls holding it, a hold). In a cluster a late call is at the front of the
 *   one order of every instance and takes the cluster's next start, so the gaps are measured
 *   between the cluster's starts (every instance hears each one on the load channel, stamped with
 *   Redis's time), not this instance's own, which come N times further apart. We tried shorter
 *   bounds (the first class's waits, late calls' own waits) and they let late chats start that a
 *   few long calls holding the only slot then made run out of time.
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

/** How many recent start gaps each endpoint keeps. */
const GAP_SAMPLES = 256;
/** Start gaps measured before their quantiles are trusted (admission's figures all need ten). */
const GAP_MIN_SAMPLES = 10;

interface EndpointStarts {
  gaps: Array<{ at: number; ms: number }>;
  /** The last start after which calls still waited; undefined when none did. */
  lastAt?: number;
  /** The cluster's starts are heard (clusterStarted): this instance's own then add nothing. */
  cluster?: boolean;
  /** This instance's starts since the cluster's last was heard. */
  unheardStarts: number;
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
  private readonly endpoints = new Map<string, EndpointStarts>();
  /** Recent waits for a slot, per class (the newest GAP_SAMPLES of each). */
  private readonly classWaits = new Map<PriorityClass, Array<{ at: number; ms: number }>>();
  /** classWaitMs's answers at `answersCachedAt`, per class. */
  private readonly classWaitAnswers = new Map<PriorityClass, number | undefined>();
  /** startGapMs's answers at `answersCachedAt` (asked for every waiting chat in a deadline pass). */
  private readonly gapAnswers = new Map<number, number | undefined>();
  private answersCachedAt = Number.NaN;

  constructor(private readonly options: RunLedgerOptions) {}

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

  /**
   * The `fraction` quantile of the gap between two starts while calls waited, the largest over the
   * endpoints (a late chat may call any of them): how long a call at the front waits for the next
   * start. Undefined until an endpoint measured GAP_MIN_SAMPLES.
   */
  startGapMs(fraction: number): number | undefined {
    const now = this.options.clock.now();
    this.answersAt(now);
    if (this.gapAnswers.has(fraction)) return this.gapAnswers.get(fraction);
    const answer = this.largestOverEndpoints(now, (gaps) => quantile(gaps, fraction));
    this.gapAnswers.set(fraction, answer);
    return answer;
  }

  /**
   * The mean gap between two starts while calls waited, the largest over the endpoints: n calls
   * ahead of a call take about n times this to start. The mean, not the median: starts often come
   * in batches (a spreading sub-window reopening, several grants in one answer), whose gaps of 0
   * make the median 0 though the calls still start only as fast as the quota allows. Undefined
   * until an endpoint measured GAP_MIN_SAMPLES.
   */
  meanStartGapMs(): number | undefined {
    return this.largestOverEndpoints(this.options.clock.now(), (gaps) => {
      let sum = 0;
      for (const gap of gaps) sum += gap.ms;
      return sum / gaps.length;
    });
  }

  /**
   * `statistic` of each endpoint's fresh start gaps, the largest (a late chat may call any of
   * them); undefined until an endpoint measured GAP_MIN_SAMPLES.
   */
  private largestOverEndpoints(
    now: number,
    statistic: (gaps: Array<{ at: number; ms: number }>) => number,
  ): number | undefined {
    let largest: number | undefined;
    for (const starts of this.endpoints.values()) {
      const gaps = this.fresh(starts.gaps, now);
      if (gaps.length >= GAP_MIN_SAMPLES) largest = Math.max(largest ?? 0, statistic(gaps));
    }
    return largest;
  }

  // ---- reported by the cluster (the load channel) ----

  /**
   * `count` calls of the cluster's started at `endpoint` at `redisAt` (Redis time, ms: every
   * instance's starts on one clock), calls still `waiting` after them anywhere. From the first one
   * on, the endpoint's gaps are the cluster's (see "Start gaps" above).
   */
  clusterStarted(endpoint: string, redisAt: number, count: number, waiting: boolean): void {
    const starts = this.endpointStarts(endpoint);
    starts.unheardStarts = 0;
    if (!starts.cluster) this.measureFrom(starts, 'cluster');
    if (starts.lastAt !== undefined && redisAt < starts.lastAt) return;
    const now = this.options.clock.now();
    // A batch's starts came together: after the first, no gap (as this instance's own batches).
    if (starts.lastAt !== undefined) keep(starts.gaps, { at: now, ms: redisAt - starts.lastAt });
    for (let more = 1; more < count; more++) keep(starts.gaps, { at: now, ms: 0 });
    this.gapAnswers.clear();
    starts.lastAt = waiting ? redisAt : undefined;
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
    this.recordGap(endpoint, othersWaiting);
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

  /** The CLASS_WAIT_PERCENTILE of `callClass`'s recent waits; undefined under GAP_MIN_SAMPLES. */
  private classWaitMs(callClass: PriorityClass, now: number): number | undefined {
    this.answersAt(now);
    if (this.classWaitAnswers.has(callClass)) return this.classWaitAnswers.get(callClass);
    const waits = this.fresh(this.classWaits.get(callClass) ?? [], now);
    const answer = waits.length < GAP_MIN_SAMPLES ? undefined : quantile(waits, CLASS_WAIT_PERCENTILE);
    this.classWaitAnswers.set(callClass, answer);
    return answer;
  }

  /** Cached answers hold for one instant (asked for every waiting chat, every queued call). */
  private answersAt(now: number): void {
    if (now === this.answersCachedAt) return;
    this.gapAnswers.clear();
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

  /**
   * A start at `endpoint`: the gap since its previous start counts only when calls were waiting
   * through it (an idle gap says nothing about how soon a waiting call starts).
   */
  private recordGap(endpoint: string, othersWaiting: boolean): void {
    const now = this.options.clock.now();
    const starts = this.endpointStarts(endpoint);
    if (starts.cluster) {
      // Its own starts are announced too: this many unheard, Redis is gone (the fail-safe starts
      // calls alone), and this instance measures its own starts again until the cluster's return.
      if (++starts.unheardStarts <= GAP_MIN_SAMPLES) return;
      this.measureFrom(starts, 'own');
    }
    if (starts.lastAt !== undefined) {
      keep(starts.gaps, { at: now, ms: now - starts.lastAt });
      this.gapAnswers.clear();
    }
    starts.lastAt = othersWaiting ? now : undefined;
  }

  /** The endpoint's gaps come from now on from the cluster's starts or this instance's own, afresh. */
  private measureFrom(starts: EndpointStarts, source: 'cluster' | 'own'): void {
    starts.cluster = source === 'cluster';
    starts.gaps.length = 0;
    starts.lastAt = undefined;
    this.gapAnswers.clear();
  }

  private endpointStarts(endpoint: string): EndpointStarts {
    let starts = this.endpoints.get(endpoint);
    if (!starts) {
      starts = { gaps: [], unheardStarts: 0 };
      this.endpoints.set(endpoint, starts);
    }
    return starts;
  }

  /** `samples` without the ones older than maxAgeMs (dropped for good). */
  private fresh(samples: Array<{ at: number; ms: number }>, now: number): Array<{ at: number; ms: number }> {
    while (samples.length > 0 && now - samples[0].at > this.options.maxAgeMs) samples.shift();
    return samples;
  }
}

function quantile(samples: Array<{ ms: number }>, fraction: number): number {
  const sorted = samples.map((sample) => sample.ms).sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)];
}

/** Appends a sample, keeping the newest GAP_SAMPLES. */
function keep(gaps: Array<{ at: number; ms: number }>, gap: { at: number; ms: number }): void {
  gaps.push(gap);
  if (gaps.length > GAP_SAMPLES) gaps.shift();
}

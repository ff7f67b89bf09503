import type { AppError } from '../errors';
import {
  lineFullRefusal,
  pausedRefusal,
  timeRefusal,
  waitForPlacesMs,
  type RefusalTiming,
} from './admission-refusals';
import type { LineMeter } from './line-meter';
import type { RunLedger } from './run-ledger';
import type { AdmissionRoom } from './routing/route-room';
import type { SchedulerMetrics } from './scheduler-events';

/**
 * Admission: THE decision whether a chat starts, waits or is refused — one line and one rule for
 * the SSE stream cap and the LLM quota alike (docs/ARCHITECTURE.md, "Admission"). The chat line
 * (api/streaming/sse-limiter.ts, with its helpers run-graces.ts and waiting-deadlines.ts) keeps the
 * waiting chats, their tokens and grace periods; it asks this class every question below and
 * decides nothing itself.
 *
 * - **Start** the next waiting chat when fewer than SSE_MAX_CONCURRENT chats run and the provider
 *   has room as measured right now (ProviderRoom: no call waits for a slot, and the running chats
 *   holding no call at this moment are fewer than the free slots): a closed loop on calls waiting
 *   and slots taken, not a prediction from latency, calls per chat or a slowdown factor.
 * - **Wait** otherwise, in the line, where a chat costs no quota. A cold server, which has measured
 *   nothing yet, lets every chat wait: it never refuses on a guess.
 * - **Refuse** a new chat only when what was measured says it cannot start in time: its projected
 *   start (its place in the line ÷ the line's measured drain rate, taken at the top of its Poisson
 *   uncertainty) plus the median run time of recent chats (a late start's, if shorter) falls past
 *   its deadline (CHAT_TIMEOUT_MS from arrival): 503 + Retry-After before its stream starts. A chat
 *   already waiting is refused (an `overloaded` event with `retryAfterMs`) once even starting now
 *   could not finish in time, which needs the late run time measured (below). Every refusal
 *   happens before the chat spends any quota.
 * - **Start late** the chat at the head with less time left than nearly every recent chat took
 *   (99th percentile) plus the time the late chats running hold it up (their calls go first), if
 *   it can still finish as a *late chat*: its calls go before every class, earliest deadline first
 *   (queue-lanes.ts), so it waits only for the next start at each call. It needs the 99th
 *   percentile of recent chats' service time (run time less the time they lost in the queue)
 *   plus, for each of its calls (the 99th percentile of calls per chat), the 95th percentile of
 *   the gap between two starts while calls waited (a late call waits for the next start) and the
 *   mean gap for each call the late chats already running may still make (they go first too). A
 *   head that cannot finish even so is refused. In a cluster all three measures are the
 *   cluster's: a late call takes the front of the one order in Redis.
 * - **Start late at the last chance** the head the provider has no room for, once waiting until
 *   the line's next look would leave it too little time even for a late start: waiting for room
 *   would turn a chat the quota can serve into a refusal.
 * - **Go late** when a running chat falls behind: its class's recent wait plus its own pace over
 *   the calls it may still make would finish it past its deadline (run-ledger.ts at each call,
 *   behind-while-waiting.ts while a call waits); it is then a late chat like one started late.
 *
 * With LLM_ADMISSION=off every chat starts as soon as a stream slot is free and none is refused
 * for lack of time (the benchmark replays workloads that way to count false refusals).
 */
export interface AdmissionOptions {
  /** Chats running at once, at most (SSE_MAX_CONCURRENT). */
  maxRunning: number;
  /** The chat deadline from arrival (CHAT_TIMEOUT_MS); 0 = none, and nothing is refused for time. */
  chatTimeoutMs: number;
  /** LLM_ADMISSION: off = start whenever a stream slot is free, refuse nobody for time. */
  enabled: boolean;
  room: AdmissionRoom;
  meter: LineMeter;
  /** What running chats' calls did (blocked time, start gaps) and which chats started late. */
  ledger: RunLedger;
  /** An operator paused the LLM queue and chose to refuse new chats meanwhile. */
  refusingNewChats?: () => boolean;
  /** Counts refusals on arrival (`troupe_llm_shed_total{reason="admission"}`); later ones end as chats. */
  metrics?: SchedulerMetrics;
  /** Floor of every Retry-After, so refused clients do not come straight back. */
  minRetryAfterMs?: number;
  /** Retry-After while an operator refuses new chats (how long an incident lasts is unknown). */
  pausedRetryAfterMs?: number;
}

/**
 * A chat starts only with as much time left as nearly every recent chat took (the 99th percentile):
 * starting one that then runs out of time spends quota on nothing.
 */
const START_RUN_PERCENTILE = 0.99;
/**
 * A waiting chat is refused early only when even a typical run (the median) cannot finish in time;
 * the borderline ones wait and are judged at the head, where the start check above protects quota.
 */
const PROJECTED_RUN_PERCENTILE = 0.5;
/** The gap a late call waits for its start, at most nearly always (its 95th percentile). */
const LATE_GAP_PERCENTILE = 0.95;

/** What admission decides for the chat at the head: start it (late or not), or refuse it. */
export type StartDecision = { start: true; lateDeadline?: number } | { start: false; refusal: AppError };

export class ChatAdmission {
  private readonly minRetryAfterMs: number;
  private readonly pausedRetryAfterMs: number;

  constructor(private readonly options: AdmissionOptions) {
    this.minRetryAfterMs = options.minRetryAfterMs ?? 1_000;
    this.pausedRetryAfterMs = options.pausedRetryAfterMs ?? 5_000;
  }

  /** May the next waiting chat start now, with `running` chats running? */
  mayStart(running: number): boolean {
    if (running >= this.options.maxRunning) return false;
    return !this.options.enabled || this.options.room.hasRoom();
  }

  /**
   * A new chat arrives and would be `position`-th in the line (1 = next to start; 0 = it starts at
   * once). Throws AppError('overloaded', …, {retryAfterMs}) when it must be refused before its
   * stream starts; returns otherwise.
   */
  checkArrival(position: number, now: number): void {
    if (this.options.refusingNewChats?.()) throw pausedRefusal(this.pausedRetryAfterMs, this.timing());
    if (position === 0) return;
    const late = this.lateBy(position, this.deadlineOf(now), now);
    if (late !== undefined) throw this.refusal(position, late, 'cannot start in time');
  }

  /**
   * The chat `position`-th in the line with `deadline`: undefined while it may keep waiting, else
   * the error to end it with (before it spent any quota). A chat already waiting is judged on what
   * is certain, not on its projected start: it is refused once even starting it now would finish
   * past its deadline. Its place in the line is no reason — the line's drain rate, measured over a
   * few starts, swings (a burst's tail drains faster than its middle; an instance of a cluster sees
   * only its own share) and waiting costs no quota; the head decides the rest (checkStart).
   * What starting now would take is the late run time (lateRunMs): until it is measured, a waiting
   * chat is not refused (the run times known before then are those of a burst's first chats, which
   * queued behind each other — not what a chat started now takes).
   */
  checkWaiting(position: number, deadline: number | undefined, now: number): AppError | undefined {
    if (deadline === undefined || this.lateRunMs(false) === undefined) return undefined;
    const late = this.lateBy(1, deadline, now);
    return late === undefined ? undefined : this.refusal(position, late, 'can no longer start in time');
  }

  /**
   * May the chat at the head start although the provider has no room (mayStart said no)? Only at
   * its last chance: it can still finish as a late chat started now (lateRunMs, counting the late
   * chats running ahead of it), and at the line's next look (`nextLookAt`) it could not. Then it
   * starts late (undefined: it keeps waiting). In a burst of chats that make long chains of calls,
   * room opens only as the first wave ends, when the chats still waiting have less time left than
   * such a chain takes: seed 7's w04 (73 chats at once on three instances, 2 s calls) refused two
   * with 13 s left after 17 s of waiting, which the replay without admission served in time. It
   * starts late, always — its calls go first, and it counts ahead of the next one's check, which
   * bounds how many start so (started on time, uncounted, 36 of a burst's chats once started at
   * one instant and all timed out). Cold, nothing starts this way.
   */
  lastChanceStart(
    running: number,
    deadline: number | undefined,
    now: number,
    nextLookAt: number,
  ): StartDecision | undefined {
    if (!this.options.enabled || deadline === undefined || running >= this.options.maxRunning)
      return undefined;
    const lateMs = this.lateRunMs();
    if (lateMs === undefined || now + lateMs > deadline || nextLookAt + lateMs <= deadline) return undefined;
    return { start: true, lateDeadline: deadline };
  }

  /**
   * The chat at the head is about to start: start it; start it late (its calls first) when it has
   * less time left than recent chats took to run but can finish as a late chat; else refuse it —
   * starting it would spend quota on a chat that times out.
   */
  checkStart(deadline: number | undefined, now: number): StartDecision {
    if (!this.options.enabled || deadline === undefined) return { start: true };
    const runMs = this.options.meter.runTimeMs(START_RUN_PERCENTILE);
    if (runMs === undefined) return { start: true };
    // Late chats running now go first at every call: a chat started on time waits behind them too.
    if (now + runMs + (this.behindLateMs() ?? 0) <= deadline) return { start: true };
    const lateMs = this.lateRunMs();
    if (lateMs !== undefined && now + lateMs <= deadline) return { start: true, lateDeadline: deadline };
    const shortBy = now + Math.min(runMs, lateMs ?? Infinity) - deadline;
    return {
      start: false,
      refusal: this.refusal(1, shortBy, 'waited too long to finish before its deadline'),
    };
  }

  /**
   * How long a chat started late now would take at most (see the rule above), behind the late
   * chats running if `behindLate`; undefined until service times and start gaps are measured.
   */
  private lateRunMs(behindLate = true): number | undefined {
    const service = this.options.meter.serviceQuantiles(START_RUN_PERCENTILE);
    const gapMs = this.options.ledger.startGapMs(LATE_GAP_PERCENTILE);
    const behindMs = behindLate ? this.behindLateMs() : 0;
    if (service === undefined || gapMs === undefined || behindMs === undefined) return undefined;
    // Each call waits for the next start, and behind the calls the late chats ahead have left,
    // whose starts come a mean gap apart (a sum of gaps varies far less than each one).
    return service.serviceMs + service.calls * gapMs + behindMs;
  }

  /**
   * How long the late chats running now (of every instance) hold up a chat started now, at most:
   * every call they may still make (up to the 99th percentile of calls per chat each, less the
   * calls each has made) goes first, a mean start gap apart — not the median, which reads 0 where
   * starts come in batches. 0 with none running; undefined until measured.
   */
  private behindLateMs(): number | undefined {
    if (this.options.ledger.lateRunning() === 0) return 0;
    const calls = this.options.meter.serviceQuantiles(START_RUN_PERCENTILE)?.calls;
    const meanGapMs = this.options.ledger.meanStartGapMs();
    if (calls === undefined || meanGapMs === undefined) return undefined;
    return this.options.ledger.lateCallsLeft(calls) * meanGapMs;
  }

  /** The wait the chat at `position` can expect, ms, from the measured drain rate; undefined cold. */
  estimateWaitMs(position: number): number | undefined {
    return waitForPlacesMs(position, this.options.meter.drainRatePerMs());
  }

  // ---- what the chat line reports: the measurements the rule above reads ----

  /** Wakes the line when the provider may have room (never polled). */
  onRoom(listener: () => void): void {
    this.options.room.onRoom(listener);
  }

  /** A chat was refused on arrival (503): it never became a chat, so only this counts it. */
  refusedOnArrival(): void {
    this.options.metrics?.record({ type: 'shed', reason: 'admission' });
  }

  /** The line's length changed. */
  lineChanged(waiting: number): void {
    this.options.meter.lineLength(waiting);
  }

  /**
   * A chat started; `waited`: it left the line's head (rather than starting on arrival);
   * `lateDeadline` when it starts late; `deadline`, any chat's deadline.
   */
  started(runId: string, waited: boolean, lateDeadline?: number, deadline?: number): void {
    this.options.ledger.chatStarted(runId, lateDeadline, deadline ?? lateDeadline);
    this.options.room.chatStarted(runId);
    this.options.meter.runStarted(runId);
    if (waited) this.options.meter.drained();
  }

  /** A started chat ended; `completed`: with `done` (else it failed, timed out or was cancelled). */
  ended(runId: string, completed: boolean): void {
    this.options.meter.runEnded(runId, completed, this.options.ledger.chatEnded(runId));
    this.options.room.chatEnded(runId);
  }

  /** Mean run time of recent completed chats, ms; undefined before one completed. */
  meanRunMs(): number | undefined {
    return this.options.meter.meanRunTimeMs();
  }

  /** The refusal of a chat arriving at a full line (`waiting` chats wait, `running` run). */
  lineFull(waiting: number, running: number, maxRunning: number): AppError {
    return lineFullRefusal(waiting, running, maxRunning, this.timing());
  }

  /** The deadline of a chat arriving at `now` (undefined: no deadline). */
  deadlineOf(now: number): number | undefined {
    return this.options.chatTimeoutMs > 0 ? now + this.options.chatTimeoutMs : undefined;
  }

  /**
   * How far past `deadline` the chat at `position` would finish, from measurements; undefined when
   * it fits, when nothing is measured yet, or with admission off. The chat at position p starts
   * after the p − 1 ahead of it have left the line.
   */
  private lateBy(position: number, deadline: number | undefined, now: number): number | undefined {
    if (!this.options.enabled || deadline === undefined) return undefined;
    const rate = this.optimisticDrainRatePerMs();
    const typicalMs = this.options.meter.runTimeMs(PROJECTED_RUN_PERCENTILE);
    if (rate === undefined || typicalMs === undefined) return undefined;
    // At the head it may still start late (checkStart): it is hopeless only if even that is too long,
    // with no late chat ahead of it (the late chats running now may be done by its turn).
    const runMs = Math.min(typicalMs, this.lateRunMs(false) ?? Infinity);
    const finishAt = now + (position - 1) / rate + runMs;
    return finishAt > deadline ? finishAt - deadline : undefined;
  }

  /**
   * The drain rate at the top of its uncertainty. n starts seen over a span are a count, known to
   * within a Poisson error: the rate could be as high as (n + 2 + 2·√(n + 1)) / span (the count's
   * upper limit at about two standard errors: 2 starts read as up to 3.7 times the measured rate,
   * 64 as 1.28 times). A line measured on a handful of starts refuses only the clearly hopeless.
   */
  private optimisticDrainRatePerMs(): number | undefined {
    const rate = this.options.meter.drainRatePerMs();
    const samples = this.options.meter.drainSamples();
    if (rate === undefined || samples === 0) return undefined;
    return (rate * (samples + 2 + 2 * Math.sqrt(samples + 1))) / samples;
  }

  /** `lateMs` past the deadline (admission-refusals.ts words it). */
  private refusal(position: number, lateMs: number, why: string): AppError {
    return timeRefusal(position, lateMs, why, this.timing());
  }

  private timing(): RefusalTiming {
    return { drainRatePerMs: this.options.meter.drainRatePerMs(), minRetryAfterMs: this.minRetryAfterMs };
  }
}

import type { Clock } from '../clock';
import { AppError, abortReason } from '../errors';
import { PROVIDER_WINDOW_MS, type Limiter, type LimiterSnapshot, type Permit } from './limiter';
import { buildQueueStatus, type QueueStatus } from './queue-status';
import { ParkedRuns } from './parked-runs';
import { QueueLanes, describeItems, type QueueEntry as Entry } from './queue-lanes';
import type { AcquireRequest, QueueItem, RequestQueueOptions, Slot } from './request-queue-types';
import { SchedulerStats } from './scheduler-stats';
import { buildWaitReasons, WaitTracker } from './wait-reasons';
import { StartPacer } from './start-pacer';
import { ActiveCalls } from './active-calls';
import { WakeTimer } from './wake-timer';
import { BreakerGate } from './breaker-gate';
import { newWaitingCall, stopWaiting } from './waiting-call';
import { BehindWhileWaiting } from './behind-while-waiting';
import { QueueDispatch } from './queue-dispatch';

/** How much longer a call of the next lower class must have waited to be served first. */
export const DEFAULT_AGING_STEP_MS = 5_000;

/** How soon dispatch is retried after the limiter failed to answer. */
const LIMITER_RETRY_MS = 100;

/** How often waiting calls of chats are checked for their chat falling behind while they wait. */
const BEHIND_CHECK_MS = 250;

/**
 * THE scheduler's queue: who gets the next provider slot.
 *
 * - Priority classes with aging, and fairness between users inside a class: the waiting line
 *   (queue-lanes.ts) says which call goes next.
 * - The circuit breaker's state is read before each permit: closed passes, open fails every queued
 *   call (and refuses new ones), half-open lets one call through at a time (it becomes the probe).
 *   The dispatch pass (queue-dispatch.ts) asks the limiter for starts and hands out the permits.
 * - Dispatch happens on events (enqueue, release, resume, wake, a rate window opening); while blocked on
 *   the rate window exactly one Clock timer is armed for when the limiter says it opens.
 * - Runs nobody listens to are parked: their calls wait outside the lanes, deadlines running.
 */

export type { QueueStatus } from './queue-status';
export type { AcquireRequest, QueueItem, RequestQueueOptions, Slot } from './request-queue-types';

export class RequestQueue {
  readonly stats: SchedulerStats;
  private readonly clock: Clock;
  private readonly limiter: Limiter;
  private readonly lanes: QueueLanes;
  private readonly agingStepMs: number;
  private readonly active = new ActiveCalls();
  /** Runs held out of dispatch (no listener), with their waiting calls. */
  private readonly parked = new ParkedRuns();
  private length = 0;
  private nextId = 1;
  private paused = false;
  private pumping = false;
  private pumpRequested = false;
  /** The one timer a blocked dispatch waits on (a rate window opening, a paced start, a retry). */
  private readonly wakeTimer: WakeTimer;
  private readonly breaker: BreakerGate;
  /** Who gets a slot now (its `blockedBy` says why the last pass stopped with calls waiting). */
  private readonly dispatch: QueueDispatch;
  private readonly waits: WaitTracker;
  private readonly pacer: StartPacer;
  private readonly behind?: BehindWhileWaiting;

  constructor(private readonly options: RequestQueueOptions) {
    this.clock = options.clock;
    this.limiter = options.limiter;
    this.agingStepMs = options.agingStepMs ?? DEFAULT_AGING_STEP_MS;
    this.stats = new SchedulerStats(options.clock, options.statsWindowMs);
    this.lanes = new QueueLanes(options.priorityOrder);
    this.waits = new WaitTracker(options.clock);
    this.pacer = new StartPacer(options.clock);
    this.wakeTimer = new WakeTimer(options.clock, () => this.pump());
    this.breaker = new BreakerGate(options.breaker);
    this.dispatch = new QueueDispatch({
      clock: options.clock,
      limiter: options.limiter,
      breaker: this.breaker,
      pacer: this.pacer,
      wakeTimer: this.wakeTimer,
      minDispatchBudgetMs: options.minDispatchBudgetMs,
      onLimiterError: options.onLimiterError,
      queue: {
        lanes: this.lanes,
        waiting: () => this.length - this.parked.size,
        isPaused: () => this.paused,
        activate: (entry, permit) => this.activate(entry, permit),
        drop: (entry, error) => this.drop(entry, error),
        pump: () => this.pump(),
      },
    });
    // Waiting calls of chats that fall behind while they wait go late (needs the run ledger).
    const ledger = options.ledger;
    this.behind =
      ledger &&
      new BehindWhileWaiting({
        clock: options.clock,
        ledger,
        everyMs: BEHIND_CHECK_MS,
        lanes: this.lanes,
        moved: () => this.pump(),
      });
  }

  /**
   * Waits for a slot; rejects with queue_timeout, queue_cleared, overloaded, the breaker's
   * llm_unavailable or the signal's reason.
   */
  acquire(request: AcquireRequest, signal: AbortSignal): Promise<Slot> {
    // While the breaker is open a call fails before it spends a slot and an RPM start.
    if (this.breaker.isOpen) return Promise.reject(this.breaker.openError());
    if (signal.aborted) return Promise.reject(abortReason(signal));
    const now = this.clock.now();
    if (request.deadline <= now) return Promise.reject(new AppError('queue_timeout'));
    if (!request.bypassBound && this.length >= this.options.queueMax) {
      return Promise.reject(
        new AppError('overloaded', 'The LLM queue is full', {
          retryAfterMs: this.options.shedRetryAfterMs?.(),
        }),
      );
    }
    const lane = this.lanes.lane(request.agentType);
    const lateDeadline = this.options.ledger?.lateDeadline(request.runId, request.agentType);
    return new Promise<Slot>((resolve, reject) => {
      const entry = newWaitingCall({
        id: this.nextId++,
        request,
        lane,
        agingStepMs: this.agingStepMs,
        lateDeadline,
        signal,
        resolve,
        reject,
        clock: this.clock,
        leave: (left, error) => this.drop(left, error),
      });
      this.length++;
      this.options.ledger?.callQueued(request.runId);
      // A call ranked below every agent's class (a gateway batch call) keeps no chat waiting.
      if (this.lanes.holdsChatsBack(request.agentType)) this.options.room?.callQueued(request.runId);
      if (this.parked.hold(entry)) {
        // A held call is no demand: the report corrects the room's count (no dispatch follows).
        this.reportRoom();
        return;
      }
      this.lanes.enter(entry);
      this.behind?.entered(entry);
      this.pump();
    });
  }

  /**
   * Holds a run's waiting calls (and any it enqueues later) out of dispatch, e.g. while nobody
   * listens to it: its deadlines still run, but it spends no slot and no RPM start. Idempotent.
   */
  park(runId: string): void {
    if (!this.parked.park(runId)) return;
    for (const entry of this.queuedEntries()) {
      if (entry.request.runId !== runId) continue;
      this.lanes.leave(entry);
      this.parked.hold(entry);
    }
    this.reportRoom();
  }

  /**
   * Lets a parked run's calls compete again: they keep their age, and take their place among
   * their user's waiting calls (a user's fairness tag counts its started calls, not held ones).
   */
  unpark(runId: string): void {
    const held = this.parked.unpark(runId);
    if (!held) return;
    for (const entry of held) {
      entry.state = 'queued';
      this.lanes.enter(entry);
      this.behind?.entered(entry);
    }
    if (held.length > 0) this.pump();
  }

  pause(): void {
    this.paused = true;
    // A pass now records the pause as what the waiting calls wait on.
    this.pump();
  }

  resume(): void {
    this.paused = false;
    this.pump();
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** Fails every queued call with queue_cleared; in-flight calls finish. Returns how many. */
  clear(): number {
    const queued = [...this.queuedEntries(), ...this.parked.entries()];
    for (const entry of queued) this.drop(entry, new AppError('queue_cleared'));
    return queued.length;
  }

  /** Re-runs dispatch: the breaker's state or the limiter's mode may have changed. */
  wake(): void {
    this.pump();
  }

  /**
   * Holds every start for `durationMs` (a provider's Retry-After), in the limiter so that every
   * instance sharing it holds too, then re-runs dispatch under the hold. Rejects if the limiter
   * could not record it.
   */
  async holdStarts(durationMs: number): Promise<void> {
    await this.limiter.holdStarts(durationMs);
    this.pump();
  }

  /** Queued and in-flight calls, queued first in dispatch-agnostic (age) order. */
  items(): QueueItem[] {
    const queued = [...this.queuedEntries(), ...this.parked.entries()].sort((a, b) => a.seq - b.seq);
    return describeItems(queued, this.active.list(), this.clock.now());
  }

  /** Waiting calls, parked ones included. */
  get queueLength(): number {
    return this.length;
  }

  /** Waiting calls held out of dispatch because their run has no listener. */
  get parkedLength(): number {
    return this.parked.size;
  }

  get activeCount(): number {
    return this.active.size;
  }

  limiterSnapshot(): LimiterSnapshot {
    return this.limiter.snapshot();
  }

  status(): QueueStatus {
    const snapshot = this.limiter.snapshot();
    const waitReasons = buildWaitReasons({
      tracker: this.waits,
      snapshot,
      now: this.clock.now(),
      waitingCalls: this.length - this.parked.size,
      order: this.lanes.order(),
      waiting: this.queuedEntries(),
      room: this.options.room,
    });
    return buildQueueStatus(this.stats, snapshot, {
      paused: this.paused,
      queued: (name) => this.lanes.lane(name).count,
      active: (name) => this.active.countOf(name),
      waitReasons,
    });
  }

  /**
   * Starts as many calls as the limits allow. One dispatch loop runs at a time (the limiter may
   * answer asynchronously, from a network round trip); requests made meanwhile fold into it.
   */
  private pump(): void {
    if (this.pumping) {
      this.pumpRequested = true;
      return;
    }
    this.pumping = true;
    void this.runDispatchLoop();
  }

  private async runDispatchLoop(): Promise<void> {
    try {
      do {
        this.pumpRequested = false;
        await this.dispatch.pass();
      } while (this.pumpRequested);
    } catch (error) {
      // The limiter failed (its adapter reports how); calls stay queued and dispatch is retried.
      this.options.onLimiterError?.(error);
      this.dispatch.blockedBy = 'limiter';
      this.wakeTimer.armAt(this.clock.now() + LIMITER_RETRY_MS);
    } finally {
      this.pumping = false;
      this.reportRoom();
    }
  }

  /** Tells admission what waits and what is free after every change (wake, don't poll). */
  private reportRoom(): void {
    if (this.pumping) return;
    this.waits.observe(this.dispatch.blockedBy, this.length - this.parked.size);
    const room = this.options.room;
    if (!room) return;
    const { active, limits, startsAvailable, startsLastMinute } = this.limiter.snapshot();
    // Slots held by calls ranked below every agent (gateway batch calls) count as free: the next
    // one released goes to a chat's call before theirs, so they keep no chat waiting.
    const heldBelowChats = this.active.countWhere((name) => !this.lanes.holdsChatsBack(name));
    const slotsFree = limits.concurrency - active + heldBelowChats;
    // Where RPM binds, a free slot is no room. Every call in flight comes back for a start when it
    // ends (its chat's next call), one call time L later, so the rate sustains rpm/minute × L calls
    // in flight (Little's law) and only the rest is room: the windows' allowance right now would
    // admit chats whose demand shows only one call time later, by when it takes the starts the
    // running chats' next calls need (their calls then wait seconds, behind the newcomers' earlier
    // stages). L is measured; before the first call completes only the allowance counts.
    const callMs = this.options.callTimeMs?.();
    const rateSlotsFree =
      callMs === undefined
        ? Infinity
        : Math.ceil((limits.rpm * callMs) / PROVIDER_WINDOW_MS) - active + heldBelowChats;
    // And a start the rate windows allow now. They reopen with time alone as recent starts age
    // out, so the room hears again about one start's spacing later (while starts of the last
    // minute remain: an idle server stays quiet).
    const free = Math.min(slotsFree, rateSlotsFree, startsAvailable ?? Infinity);
    if (startsAvailable !== undefined && startsAvailable < slotsFree && startsLastMinute > 0)
      this.wakeTimer.armAt(this.clock.now() + PROVIDER_WINDOW_MS / limits.rpm);
    room.update(this.lanes.waitingAheadOfChats(), free);
  }

  private activate(entry: Entry, permit: Permit): void {
    // Out of the waiting line for good; its user's next call queues behind it.
    this.lanes.dispatched(entry);
    this.stopWaiting(entry);
    const now = this.clock.now();
    this.options.ledger?.callStarted(
      entry.request.runId,
      this.options.endpointName ?? 'default',
      this.length - this.parked.size > 0,
    );
    entry.state = 'active';
    entry.permit = permit;
    this.breaker.started(entry);
    entry.waitedMs = now - entry.enqueuedAt;
    this.pacer.started(this.lanes.holdsChatsBack(entry.request.agentType));
    this.active.add(entry);
    this.stats.recordWait(entry.request.agentType, entry.waitedMs);
    if (entry.request.runId !== undefined)
      this.options.ledger?.callWaited(entry.request.agentType, entry.waitedMs);
    entry.resolve({
      id: entry.id,
      waitedMs: entry.waitedMs,
      release: () => this.release(entry),
      settle: (tokens) => {
        this.limiter.settle(permit, tokens).catch((error: unknown) => this.options.onLimiterError?.(error));
      },
    });
  }

  private release(entry: Entry): void {
    if (entry.state !== 'active') return;
    entry.state = 'done';
    this.breaker.ended(entry);
    this.active.delete(entry);
    this.options.room?.callEnded(entry.request.runId);
    this.options.ledger?.callEnded(entry.request.runId);
    // The next call is asked for now, not after the release's answer: the limiter orders the ask
    // behind the release (one connection), so a slot changes hands in one round trip, not two.
    this.limiter.release(entry.permit!).catch((error: unknown) => {
      this.options.onLimiterError?.(error);
      this.pump();
    });
    this.pump();
  }

  /** Takes a waiting call out with an error (timeout, abort, clear, the breaker open). */
  private drop(entry: Entry, error: AppError): void {
    if (entry.state === 'parked') {
      this.parked.forget(entry);
    } else if (entry.state === 'queued') {
      this.lanes.leave(entry);
    } else {
      return;
    }
    this.stopWaiting(entry);
    this.options.room?.callEnded(entry.request.runId);
    this.options.ledger?.callDropped(entry.request.runId);
    entry.reject(error);
    // The head may have been blocked on TPM by this call's estimate; a smaller one may fit now.
    this.pump();
  }

  /** The call no longer waits (dispatched or dropped): its count, abort listener and deadline go. */
  private stopWaiting(entry: Entry): void {
    this.length--;
    stopWaiting(entry, this.clock);
  }

  private queuedEntries(): Entry[] {
    return this.lanes.entries();
  }
}

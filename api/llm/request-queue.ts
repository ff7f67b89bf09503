import { AGENT_NAMES, type AgentName } from '../agents/agent-name';
import type { Clock, TimerHandle } from '../clock';
import { AppError, abortReason } from '../errors';
import { BinaryHeap } from './binary-heap';
import type { Limiter, LimiterSnapshot, Permit } from './limiter';
import { buildQueueStatus, type QueueStatus } from './queue-status';
import type { AcquireRequest, QueueItem, RequestQueueOptions, Slot } from './request-queue-types';
import { SchedulerStats, type CallOutcome } from './scheduler-stats';

/** How much longer a call of the next lower class must have waited to be served first. */
export const DEFAULT_AGING_STEP_MS = 5_000;

/**
 * THE scheduler's queue: who gets the next provider slot.
 *
 * - Priority classes follow `priorityOrder`, with linear aging: a call's effective priority is
 *   `rank - waited / agingStepMs`. Comparing two calls at the same instant, that order equals the
 *   order of the time-invariant key `firstEnqueuedAt + rank * agingStepMs`, so aging needs no
 *   re-sorting: each class is ranked by its oldest call's key, and a low class wins once its oldest
 *   call has waited `agingStepMs` per rank longer than the competing head. No class starves.
 * - Inside a class, users are served by start-time fair queuing: a call's tag is
 *   max(class virtual time, the user's last tag) + 1, and the smallest tag goes first. A user with
 *   50 queued calls holds tags v+1…v+50; another user's single call gets v+1 and goes next.
 * - An optional gate (the circuit breaker) is asked before each permit: it may pass, pass one probe,
 *   hold the queue, or fail every queued call.
 * - Dispatch happens on events (enqueue, release, resume, wake, a rate window opening); while blocked on
 *   the rate window exactly one Clock timer is armed for when the limiter says it opens.
 * - Both heaps use lazy deletion: cancelled or timed-out calls stay in the heap, marked, and are
 *   skipped when they surface, which keeps removal O(1).
 */

export type { QueueStatus } from './queue-status';
export type { AcquireRequest, QueueItem, RequestQueueOptions, Slot } from './request-queue-types';

interface Entry {
  readonly id: number;
  readonly request: AcquireRequest;
  readonly seq: number;
  readonly enqueuedAt: number;
  readonly ageKey: number;
  readonly lane: Lane;
  tag: number;
  state: 'queued' | 'active' | 'done';
  resolve: (slot: Slot) => void;
  reject: (error: AppError) => void;
  signal: AbortSignal;
  onAbort: () => void;
  deadlineTimer?: TimerHandle;
  permit?: Permit;
  waitedMs: number;
}

/** One priority class. */
interface Lane {
  readonly agent: AgentName;
  readonly rank: number;
  count: number;
  virtualTime: number;
  readonly byAge: BinaryHeap<Entry>;
  readonly byTag: BinaryHeap<Entry>;
  readonly users: Map<string, { lastTag: number; queued: number }>;
}

export class RequestQueue {
  readonly stats: SchedulerStats;
  private readonly clock: Clock;
  private readonly limiter: Limiter;
  private readonly lanes: Lane[];
  private readonly laneByAgent: Map<AgentName, Lane>;
  private readonly agingStepMs: number;
  private readonly active = new Set<Entry>();
  private readonly activeByAgent = new Map<AgentName, number>();
  private length = 0;
  private nextId = 1;
  private paused = false;
  private pumping = false;
  private pumpRequested = false;
  private wakeTimer?: TimerHandle;
  private wakeAt = Infinity;

  constructor(private readonly options: RequestQueueOptions) {
    this.clock = options.clock;
    this.limiter = options.limiter;
    this.agingStepMs = options.agingStepMs ?? DEFAULT_AGING_STEP_MS;
    this.stats = new SchedulerStats(options.clock, options.statsWindowMs);
    // Agents missing from priorityOrder rank after the listed ones, in the brief's order.
    const order = [
      ...options.priorityOrder,
      ...AGENT_NAMES.filter((agent) => !options.priorityOrder.includes(agent)),
    ];
    this.lanes = order.map((agent, rank) => ({
      agent,
      rank,
      count: 0,
      virtualTime: 0,
      byAge: new BinaryHeap<Entry>((a, b) => a.ageKey < b.ageKey || (a.ageKey === b.ageKey && a.seq < b.seq)),
      byTag: new BinaryHeap<Entry>((a, b) => a.tag < b.tag || (a.tag === b.tag && a.seq < b.seq)),
      users: new Map(),
    }));
    this.laneByAgent = new Map(this.lanes.map((lane) => [lane.agent, lane]));
  }

  /**
   * Waits for a slot; rejects with queue_timeout, queue_cleared, overloaded, the gate's error or the
   * signal's reason.
   */
  acquire(request: AcquireRequest, signal: AbortSignal): Promise<Slot> {
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
    const lane = this.laneByAgent.get(request.agentType)!;
    return new Promise<Slot>((resolve, reject) => {
      const seq = this.nextId++;
      const entry: Entry = {
        id: seq,
        seq,
        request,
        enqueuedAt: now,
        ageKey: (request.firstEnqueuedAt ?? now) + lane.rank * this.agingStepMs,
        lane,
        tag: 0,
        state: 'queued',
        resolve,
        reject,
        signal,
        onAbort: () => this.drop(entry, abortReason(signal)),
        waitedMs: 0,
      };
      const user = lane.users.get(request.userId) ?? { lastTag: 0, queued: 0 };
      entry.tag = Math.max(lane.virtualTime, user.lastTag) + 1;
      user.lastTag = entry.tag;
      user.queued++;
      lane.users.set(request.userId, user);
      lane.byAge.push(entry);
      lane.byTag.push(entry);
      lane.count++;
      this.length++;
      signal.addEventListener('abort', entry.onAbort, { once: true });
      entry.deadlineTimer = this.clock.setTimeout(
        () => this.drop(entry, new AppError('queue_timeout')),
        request.deadline - now,
      );
      this.pump();
    });
  }

  pause(): void {
    this.paused = true;
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
    const queued = this.queuedEntries();
    for (const entry of queued) this.drop(entry, new AppError('queue_cleared'));
    return queued.length;
  }

  /** Re-runs dispatch: the gate's answer may have changed (e.g. the breaker closed or opened). */
  wake(): void {
    this.pump();
  }

  /** Queued and in-flight calls, queued first in dispatch-agnostic (age) order. */
  items(): QueueItem[] {
    const now = this.clock.now();
    const queued = this.queuedEntries().sort((a, b) => a.seq - b.seq);
    const describe = (entry: Entry, state: 'queued' | 'active'): QueueItem => ({
      id: entry.id,
      agentType: entry.request.agentType,
      userId: entry.request.userId,
      conversationId: entry.request.conversationId,
      runId: entry.request.runId,
      state,
      waitedMs: state === 'queued' ? now - entry.enqueuedAt : entry.waitedMs,
    });
    return [
      ...queued.map((entry) => describe(entry, 'queued')),
      ...[...this.active].map((entry) => describe(entry, 'active')),
    ];
  }

  get queueLength(): number {
    return this.length;
  }

  get activeCount(): number {
    return this.active.size;
  }

  limiterSnapshot(): LimiterSnapshot {
    return this.limiter.snapshot();
  }

  recordOutcome(agent: AgentName, outcome: CallOutcome, processMs: number): void {
    this.stats.recordOutcome(agent, outcome, processMs);
  }

  status(): QueueStatus {
    const queued = {} as Record<AgentName, number>;
    const active = {} as Record<AgentName, number>;
    for (const agent of AGENT_NAMES) {
      queued[agent] = this.laneByAgent.get(agent)!.count;
      active[agent] = this.activeByAgent.get(agent) ?? 0;
    }
    return buildQueueStatus(this.stats, this.limiter.snapshot(), { paused: this.paused, queued, active });
  }

  /** Starts as many calls as the limits allow; re-entrant calls fold into the running loop. */
  private pump(): void {
    if (this.pumping) {
      this.pumpRequested = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.pumpRequested = false;
        this.dispatch();
      } while (this.pumpRequested);
    } finally {
      this.pumping = false;
    }
  }

  private dispatch(): void {
    while (this.length > 0) {
      // The gate comes before the permit: a call that would not reach the provider takes no slot
      // and records no start in the rolling window.
      const gate = this.options.gate?.check() ?? { action: 'pass' };
      if (gate.action === 'fail') {
        for (const entry of this.queuedEntries()) this.drop(entry, gate.error());
        return;
      }
      if (this.paused || gate.action === 'hold') return;
      const entry = this.next();
      const decision = this.limiter.tryStart(entry.request.estimatedTokens);
      if (!decision.started) {
        if (decision.retryAt !== null) this.armWake(decision.retryAt);
        return;
      }
      const probeTicket = gate.action === 'probe' ? this.options.gate!.claimProbe() : undefined;
      this.activate(entry, decision.permit, probeTicket);
    }
  }

  /** The call that goes next: the lane whose oldest call has the smallest aged key, then its fairest call. */
  private next(): Entry {
    let best: Lane | undefined;
    let bestKey = Infinity;
    for (const lane of this.lanes) {
      if (lane.count === 0) continue;
      const oldest = peekLive(lane.byAge)!;
      if (oldest.ageKey < bestKey) {
        bestKey = oldest.ageKey;
        best = lane;
      }
    }
    return peekLive(best!.byTag)!;
  }

  private activate(entry: Entry, permit: Permit, probeTicket: number | undefined): void {
    this.unqueue(entry);
    const now = this.clock.now();
    entry.state = 'active';
    entry.permit = permit;
    entry.waitedMs = now - entry.enqueuedAt;
    entry.lane.virtualTime = Math.max(entry.lane.virtualTime, entry.tag);
    this.active.add(entry);
    const agent = entry.request.agentType;
    this.activeByAgent.set(agent, (this.activeByAgent.get(agent) ?? 0) + 1);
    this.stats.recordWait(agent, entry.waitedMs);
    entry.resolve({
      id: entry.id,
      waitedMs: entry.waitedMs,
      probeTicket,
      release: () => this.release(entry),
      settle: (tokens) => this.limiter.settle(permit, tokens),
    });
  }

  private release(entry: Entry): void {
    if (entry.state !== 'active') return;
    entry.state = 'done';
    this.active.delete(entry);
    const agent = entry.request.agentType;
    this.activeByAgent.set(agent, (this.activeByAgent.get(agent) ?? 1) - 1);
    this.limiter.release(entry.permit!);
    this.pump();
  }

  /** Takes a queued call out with an error (timeout, abort, clear, gate failure). */
  private drop(entry: Entry, error: AppError): void {
    if (entry.state !== 'queued') return;
    this.unqueue(entry);
    entry.state = 'done';
    entry.reject(error);
    // The head may have been blocked on TPM by this call's estimate; a smaller one may fit now.
    this.pump();
  }

  private unqueue(entry: Entry): void {
    const lane = entry.lane;
    lane.count--;
    this.length--;
    const user = lane.users.get(entry.request.userId)!;
    if (--user.queued === 0) lane.users.delete(entry.request.userId);
    entry.signal.removeEventListener('abort', entry.onAbort);
    if (entry.deadlineTimer) this.clock.clearTimeout(entry.deadlineTimer);
    // Marked, not spliced: peekLive discards it when it surfaces.
    entry.state = 'done';
    if (lane.count === 0) {
      lane.byAge.clear();
      lane.byTag.clear();
    }
  }

  /** Arms the single wake-up timer for when the rate window opens (keeps the earliest). */
  private armWake(at: number): void {
    if (this.wakeTimer && this.wakeAt <= at) return;
    if (this.wakeTimer) this.clock.clearTimeout(this.wakeTimer);
    this.wakeAt = at;
    this.wakeTimer = this.clock.setTimeout(() => {
      this.wakeTimer = undefined;
      this.wakeAt = Infinity;
      this.pump();
    }, at - this.clock.now());
  }

  private queuedEntries(): Entry[] {
    const entries: Entry[] = [];
    for (const lane of this.lanes) {
      if (lane.count === 0) continue;
      // byAge holds every live queued entry (plus marked ones, filtered here).
      for (const entry of lane.byAge.values()) if (entry.state === 'queued') entries.push(entry);
    }
    return entries;
  }
}

function peekLive(heap: BinaryHeap<Entry>): Entry | undefined {
  let top = heap.peek();
  while (top && top.state !== 'queued') {
    heap.pop();
    top = heap.peek();
  }
  return top;
}

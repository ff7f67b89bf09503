import { isAgentName } from '../agents/agent-name';
import { completePriorityOrder, type PriorityClass } from './priority-class';
import type { TimerHandle } from '../clock';
import type { AppError } from '../errors';
import { BinaryHeap } from './binary-heap';
import type { Permit } from './limiter';
import type { AcquireRequest, QueueItem, Slot } from './request-queue-types';

/**
 * The request queue's waiting line: one lane per priority class, each with two heaps.
 *
 * - Classes follow `priorityOrder`, with linear aging: a call's effective priority is
 *   `rank - waited / agingStepMs`. Comparing two calls at the same instant, that order equals the
 *   order of the time-invariant key `firstEnqueuedAt + rank * agingStepMs`, so aging needs no
 *   re-sorting: each class is ranked by its oldest call's key, and a low class wins once its oldest
 *   call has waited `agingStepMs` per rank longer than the competing head. No class starves.
 * - Inside a class, users are served by start-time fair queuing: a call's tag is
 *   max(class virtual time, the user's last tag) + 1, and the smallest tag goes first. A user with
 *   50 queued calls holds tags v+1…v+50; another user's single call gets v+1 and goes next.
 * - Both heaps use lazy deletion: cancelled or timed-out calls stay in the heap, marked, and are
 *   skipped when they surface, which keeps removal O(1).
 */

/** One call in the request queue, from acquire to its slot's release. */
export interface QueueEntry {
  readonly id: number;
  /** Bumped each time the entry re-enters the heaps (after parking): older heap tickets are stale. */
  epoch: number;
  readonly request: AcquireRequest;
  readonly seq: number;
  readonly enqueuedAt: number;
  readonly ageKey: number;
  readonly lane: Lane;
  tag: number;
  /** `parked`: waiting, but held out of dispatch while its run has no listener. */
  state: 'queued' | 'parked' | 'active' | 'done';
  resolve: (slot: Slot) => void;
  reject: (error: AppError) => void;
  signal: AbortSignal;
  onAbort: () => void;
  deadlineTimer?: TimerHandle;
  permit?: Permit;
  waitedMs: number;
}

/** An entry's place in a heap; stale once the entry left the heaps (dispatched, dropped, parked). */
interface Ticket {
  readonly entry: QueueEntry;
  readonly epoch: number;
}

/** One priority class. */
export interface Lane {
  readonly agent: PriorityClass;
  readonly rank: number;
  count: number;
  virtualTime: number;
  readonly byAge: BinaryHeap<Ticket>;
  readonly byTag: BinaryHeap<Ticket>;
  readonly users: Map<string, { lastTag: number; queued: number }>;
}

export class QueueLanes {
  private readonly lanes: Lane[];
  private readonly laneByAgent: Map<PriorityClass, Lane>;
  /**
   * The lowest rank an agent's class holds. Calls of classes ranked below it (the gateway's, by
   * default) do not hold a chat's calls back, so they are no reason to keep a chat waiting.
   */
  private readonly lowestAgentRank: number;

  constructor(priorityOrder: readonly PriorityClass[]) {
    // Classes missing from priorityOrder rank after the listed ones, in the default order.
    const order = completePriorityOrder(priorityOrder);
    this.lanes = order.map((agent, rank) => ({
      agent,
      rank,
      count: 0,
      virtualTime: 0,
      byAge: new BinaryHeap<Ticket>(
        ({ entry: a }, { entry: b }) => a.ageKey < b.ageKey || (a.ageKey === b.ageKey && a.seq < b.seq),
      ),
      byTag: new BinaryHeap<Ticket>(
        ({ entry: a }, { entry: b }) => a.tag < b.tag || (a.tag === b.tag && a.seq < b.seq),
      ),
      users: new Map(),
    }));
    this.laneByAgent = new Map(this.lanes.map((lane) => [lane.agent, lane]));
    this.lowestAgentRank = Math.max(
      ...this.lanes.filter((lane) => isAgentName(lane.agent)).map((lane) => lane.rank),
    );
  }

  /** The agents in priority order (dispatch order before aging). */
  order(): PriorityClass[] {
    return this.lanes.map((lane) => lane.agent);
  }

  /** Whether a call of this class would be queued ahead of some agent's call (see lowestAgentRank). */
  holdsChatsBack(agent: PriorityClass): boolean {
    return this.lane(agent).rank <= this.lowestAgentRank;
  }

  /** Waiting calls that a chat's calls would queue behind: admission's "calls waiting". */
  waitingAheadOfChats(): number {
    let count = 0;
    for (const lane of this.lanes) if (lane.rank <= this.lowestAgentRank) count += lane.count;
    return count;
  }

  lane(agent: PriorityClass): Lane {
    return this.laneByAgent.get(agent)!;
  }

  /** Puts a waiting call into its lane's heaps; a fresh tag unless one is kept (unparking). */
  enter(entry: QueueEntry, keptTag?: number): void {
    const lane = entry.lane;
    const user = lane.users.get(entry.request.userId) ?? { lastTag: 0, queued: 0 };
    if (keptTag === undefined) {
      entry.tag = Math.max(lane.virtualTime, user.lastTag) + 1;
      user.lastTag = entry.tag;
    }
    user.queued++;
    lane.users.set(entry.request.userId, user);
    entry.epoch++;
    const ticket = { entry, epoch: entry.epoch };
    lane.byAge.push(ticket);
    lane.byTag.push(ticket);
    lane.count++;
  }

  /** Takes a waiting call out of its lane (the heap tickets go stale and are skipped lazily). */
  leave(entry: QueueEntry): void {
    const lane = entry.lane;
    lane.count--;
    const user = lane.users.get(entry.request.userId)!;
    if (--user.queued === 0) lane.users.delete(entry.request.userId);
    entry.epoch++;
    entry.state = 'done';
    if (lane.count === 0) {
      lane.byAge.clear();
      lane.byTag.clear();
    }
  }

  /**
   * The call that goes next (some lane must hold one): the lane whose oldest call has the smallest
   * aged key, then its fairest call; with that key, its place in an order shared by several
   * instances (Limiter.tryStart).
   */
  next(): { entry: QueueEntry; orderKey: number } {
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
    return { entry: peekLive(best!.byTag)!, orderKey: bestKey };
  }

  /** The call got its slot: its class's virtual time moves past its tag. */
  dispatched(entry: QueueEntry): void {
    entry.lane.virtualTime = Math.max(entry.lane.virtualTime, entry.tag);
  }

  /** Every waiting call in the lanes (parked ones are not in them). */
  entries(): QueueEntry[] {
    const entries: QueueEntry[] = [];
    for (const lane of this.lanes) {
      if (lane.count === 0) continue;
      // byAge holds every live queued entry (plus stale tickets, filtered here).
      for (const ticket of lane.byAge.values()) if (isLive(ticket)) entries.push(ticket.entry);
    }
    return entries;
  }
}

/** GET /api/queue/items: waiting calls (in arrival order), then the ones in flight. */
export function describeItems(queued: QueueEntry[], active: QueueEntry[], now: number): QueueItem[] {
  const describe = (entry: QueueEntry, state: 'queued' | 'active'): QueueItem => ({
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
    ...active.map((entry) => describe(entry, 'active')),
  ];
}

function isLive(ticket: Ticket): boolean {
  return ticket.entry.state === 'queued' && ticket.entry.epoch === ticket.epoch;
}

function peekLive(heap: BinaryHeap<Ticket>): QueueEntry | undefined {
  let top = heap.peek();
  while (top && !isLive(top)) {
    heap.pop();
    top = heap.peek();
  }
  return top?.entry;
}

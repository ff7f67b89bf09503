import { isAgentName } from '../agents/agent-name';
import { completePriorityOrder, type PriorityClass } from './priority-class';
import type { TimerHandle } from '../clock';
import type { AppError } from '../errors';
import { BinaryHeap } from './binary-heap';
import type { Permit } from './limiter';
import type { AcquireRequest, QueueItem, Slot } from './request-queue-types';

/**
 * The request queue's waiting line: one lane per priority class, holding its calls by age and its
 * users by fairness tag (each user's own calls in arrival order).
 *
 * - Classes follow `priorityOrder`, with linear aging: a call's effective priority is
 *   `rank - waited / agingStepMs`. Comparing two calls at the same instant, that order equals the
 *   order of the time-invariant key `firstEnqueuedAt + rank * agingStepMs`, so aging needs no
 *   re-sorting: each class is ranked by its oldest call's key, and a low class wins once its oldest
 *   call has waited `agingStepMs` per rank longer than the competing head. No class starves.
 * - Inside a class, users are served by start-time fair queuing over their calls that START: each
 *   user waits in line with its own calls in arrival order, and only its oldest call (its head)
 *   holds a tag. A user that begins waiting gets tag v+1 (v: the class's virtual time, the largest
 *   tag started); when its head starts, its next call gets max(v, tag) + 1; the smallest tag goes
 *   first. A user with 50 queued calls holds v+1; another user's single call gets v+1 and goes
 *   right after its head.
 * - Tags count started calls, not arrivals: a call that leaves unstarted (its wait limit, its
 *   client gone, its run parked) passes its tag to the user's next call. Were tags handed out on
 *   arrival, a class that receives more than it serves and drops calls at their wait limit would
 *   rank its users by how many calls they have SENT: the user who sent the fewest would keep the
 *   smallest tags and take nearly every start. Counting starts, users who all send more than the
 *   class serves get equal shares (max-min fairness), whatever each sends beyond its share.
 * - Calls of *late* chats (admission started them with less time left than recent chats took,
 *   api/llm/admission.ts) wait apart and go before every class, earliest chat deadline first: a
 *   late chat then waits only for the next start at each call, which is what admission counted on.
 *   Its calls still count in their class's `count` (the status shows them there).
 * - The heaps use lazy deletion: cancelled or timed-out calls stay in a heap, marked, and are
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
  /**
   * Set for a call of a late chat: the chat's deadline (its order among the late calls). Set
   * while it waits when its chat falls behind (behind-while-waiting.ts): out of its lane, in again.
   */
  lateDeadline?: number;
  readonly lane: Lane;
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

/** A user's waiting calls in one class, oldest first; only the head holds a place in `byTag`. */
interface UserLine {
  readonly userId: string;
  /** The tag of the user's head (the next of its calls to start). */
  tag: number;
  queued: number;
  readonly bySeq: BinaryHeap<Ticket>;
  /** The head `byTag` knows; its ticket is stale once another call heads the line. */
  head?: QueueEntry;
  headEpoch: number;
}

/** A user's place in its class's `byTag` heap; stale once its head changed. */
interface HeadTicket {
  readonly line: UserLine;
  readonly epoch: number;
  readonly tag: number;
  readonly seq: number;
}

/** One priority class. */
export interface Lane {
  readonly agent: PriorityClass;
  readonly rank: number;
  count: number;
  virtualTime: number;
  readonly byAge: BinaryHeap<Ticket>;
  readonly byTag: BinaryHeap<HeadTicket>;
  readonly users: Map<string, UserLine>;
}

/**
 * How far before its deadline a late call's place in the shared order (Limiter.tryStart) is put:
 * earlier than any other call's (no call waits an hour), earliest deadline first among late calls.
 */
const LATE_ORDER_LEAD_MS = 3_600_000;

export class QueueLanes {
  private readonly lanes: Lane[];
  /** Calls of late chats, earliest deadline first. */
  private readonly late = new BinaryHeap<Ticket>(
    ({ entry: a }, { entry: b }) =>
      a.lateDeadline! < b.lateDeadline! || (a.lateDeadline === b.lateDeadline && a.seq < b.seq),
  );
  private lateCount = 0;
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
      byTag: new BinaryHeap<HeadTicket>((a, b) => a.tag < b.tag || (a.tag === b.tag && a.seq < b.seq)),
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

  /**
   * Puts a waiting call into its lane's heaps, behind its user's older calls (a call back from
   * parking goes before the ones that arrived while it was held). A user that was not waiting in
   * this class begins at the class's virtual time.
   */
  enter(entry: QueueEntry): void {
    const lane = entry.lane;
    if (entry.lateDeadline !== undefined) {
      entry.epoch++;
      this.late.push({ entry, epoch: entry.epoch });
      this.lateCount++;
      lane.count++;
      return;
    }
    const userId = entry.request.userId;
    let line = lane.users.get(userId);
    if (!line) {
      line = {
        userId,
        tag: lane.virtualTime + 1,
        queued: 0,
        bySeq: new BinaryHeap<Ticket>(({ entry: a }, { entry: b }) => a.seq < b.seq),
        headEpoch: 0,
      };
      lane.users.set(userId, line);
    }
    line.queued++;
    entry.epoch++;
    const ticket = { entry, epoch: entry.epoch };
    lane.byAge.push(ticket);
    line.bySeq.push(ticket);
    lane.count++;
    this.refreshHead(line, lane);
  }

  /**
   * Takes a waiting call out of its lane unstarted (timed out, aborted, parked): its user keeps its
   * tag for its next call. The heap tickets go stale and are skipped lazily.
   */
  leave(entry: QueueEntry): void {
    this.remove(entry);
  }

  /** A waiting call's chat went late while the call waited: it moves to the late calls. */
  goLate(entry: QueueEntry, lateDeadline: number): void {
    this.remove(entry);
    entry.lateDeadline = lateDeadline;
    entry.state = 'queued';
    this.enter(entry);
  }

  /** The call got its slot: the class's virtual time moves past its tag, its user's next call queues behind it. */
  dispatched(entry: QueueEntry): void {
    if (entry.lateDeadline !== undefined) return this.remove(entry);
    const lane = entry.lane;
    const line = lane.users.get(entry.request.userId)!;
    lane.virtualTime = Math.max(lane.virtualTime, line.tag);
    line.tag = lane.virtualTime + 1;
    this.remove(entry);
  }

  private remove(entry: QueueEntry): void {
    const lane = entry.lane;
    lane.count--;
    if (entry.lateDeadline !== undefined) {
      entry.epoch++;
      entry.state = 'done';
      if (--this.lateCount === 0) this.late.clear();
      return;
    }
    const line = lane.users.get(entry.request.userId)!;
    entry.epoch++;
    entry.state = 'done';
    if (--line.queued === 0) {
      lane.users.delete(entry.request.userId);
      line.headEpoch++;
    } else {
      this.refreshHead(line, lane);
    }
    if (lane.count === 0) {
      lane.byAge.clear();
      lane.byTag.clear();
    }
  }

  /** Gives the user's current head (its oldest waiting call) its place in `byTag`, if it changed. */
  private refreshHead(line: UserLine, lane: Lane): void {
    const head = peekLive(line.bySeq)!;
    if (head === line.head) return;
    line.head = head;
    line.headEpoch++;
    lane.byTag.push({ line, epoch: line.headEpoch, tag: line.tag, seq: head.seq });
  }

  /**
   * The call that goes next (some lane must hold one): the lane whose oldest call has the smallest
   * aged key, then its fairest call; with that key, its place in an order shared by several
   * instances (Limiter.tryStart).
   */
  next(): { entry: QueueEntry; orderKey: number } {
    if (this.lateCount > 0) {
      const entry = peekLive(this.late)!;
      return { entry, orderKey: entry.lateDeadline! - LATE_ORDER_LEAD_MS };
    }
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
    return { entry: peekHead(best!.byTag)!, orderKey: bestKey };
  }

  /** Every waiting call in the lanes (parked ones are not in them). */
  entries(): QueueEntry[] {
    const entries: QueueEntry[] = [];
    for (const ticket of this.late.values()) if (isLive(ticket)) entries.push(ticket.entry);
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

function peekHead(heap: BinaryHeap<HeadTicket>): QueueEntry | undefined {
  let top = heap.peek();
  while (top && top.line.headEpoch !== top.epoch) {
    heap.pop();
    top = heap.peek();
  }
  return top?.line.head;
}

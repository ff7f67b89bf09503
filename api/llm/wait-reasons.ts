import type { Clock } from '../clock';
import type { LimiterSnapshot } from './limiter';
import type { PriorityClass } from './priority-class';

/**
 * Why LLM calls wait, from the scheduler's own state: what held the head of the queue each time
 * dispatch stopped with calls still waiting (`GET /api/queue/status` → `queue.waitReasons`, the
 * dashboard's "why calls wait" panel). A wait with in-flight and RPM far below their limits then
 * says what it was: a provider hold, the start-rate window, an AIMD-lowered limit, a pause…
 */
export type WaitReason =
  /** An operator paused dispatch. */
  | 'paused'
  /** The breaker is half-open: one probe call is out and the others wait for its verdict. */
  | 'breaker_probe'
  /** A provider's Retry-After holds every start. */
  | 'provider_hold'
  /** Every in-flight slot (the configured limit) is taken. */
  | 'in_flight_limit'
  /** The rolling minute's starts (the configured RPM) are used up. */
  | 'rpm_window'
  /** AIMD lowered the in-flight or RPM limit after a 429, and the lowered limit is what binds. */
  | 'aimd'
  /**
   * The start-rate window: the minute's allowance spread over short windows (rpm/6 per 10 s), or,
   * sharing a quota through Redis, an earlier call waiting on another instance goes first.
   */
  | 'start_rate'
  /** The rolling minute's tokens (TPM) would be exceeded by the next call's estimate. */
  | 'tpm_window'
  /** The limiter has not answered yet (a Redis round trip) or failed to answer. */
  | 'limiter';

export const WAIT_REASONS: readonly WaitReason[] = [
  'paused',
  'breaker_probe',
  'provider_hold',
  'in_flight_limit',
  'rpm_window',
  'aimd',
  'start_rate',
  'tpm_window',
  'limiter',
];

/** `queue.waitReasons` of GET /api/queue/status. */
export interface WaitReasons {
  /** What holds the waiting calls now; null when none waits (held runs aside). */
  now: WaitReason | null;
  /** `now` in plain words, with the figures behind it. */
  detail: string;
  /** Calls waiting for a slot now (calls of runs nobody listens to excluded). */
  waitingCalls: number;
  /**
   * Waiting in the last minute by what held it, in call-milliseconds (two calls waiting one
   * second = 2000), and each reason's share of the total.
   */
  lastMinute: {
    totalMs: number;
    byReason: Record<WaitReason, number>;
    /** The reason with the largest share, null when nothing waited. */
    top: WaitReason | null;
  };
  /** Limits AIMD lowered below the configured ones (null = none lowered). */
  aimd: {
    maxConcurrency: number;
    maxRPM: number;
    configuredConcurrency: number;
    configuredRPM: number;
  } | null;
  /** The priority lanes in dispatch order, with their waiting calls and the longest wait among them. */
  lanes: Array<{ agent: PriorityClass; waiting: number; oldestWaitMs: number }>;
  /**
   * The chat line's admission signal (api/llm/provider-room.ts): a waiting chat starts only while
   * no call waits for a slot and the running chats between calls are fewer than the free slots plus
   * their measured average. Chats wait there at no quota cost.
   */
  chatLine: ChatLineRoom | null;
}

/** The provider room as admission sees it now. */
export interface ChatLineRoom {
  hasRoom: boolean;
  callsWaiting: number;
  freeSlots: number;
  /** This instance's part of them: the free slots are the cluster's, shared by its N instances. */
  freeSlotsHere: number;
  runningChats: number;
  /** Running chats holding no call right now (starting, between calls, in a tool). */
  chatsBetweenCalls: number;
  /** How many such chats the room allows on top of the free slots (their measured average). */
  betweenCallsAllowance: number;
}

/**
 * What binds the limiter's refusal, read from its snapshot at that moment (no adapter change: the
 * in-memory and Redis limiters both report these figures). AIMD is named when the lowered limit
 * binds and the configured one would have let the call start.
 */
export function classifyLimiterBlock(
  snapshot: LimiterSnapshot,
  estimatedTokens: number,
  now: number,
): WaitReason {
  const { limits, configured } = snapshot;
  if (snapshot.heldUntil > now) return 'provider_hold';
  if (snapshot.active >= limits.concurrency) {
    return snapshot.active < configured.concurrency ? 'aimd' : 'in_flight_limit';
  }
  if (snapshot.startsLastMinute >= limits.rpm) {
    return snapshot.startsLastMinute < configured.rpm ? 'aimd' : 'rpm_window';
  }
  if (limits.tpm && snapshot.tokensLastMinute + estimatedTokens > limits.tpm) return 'tpm_window';
  return 'start_rate';
}

/** The window the shares are kept over, in buckets this wide. */
const WINDOW_MS = 60_000;
const BUCKET_MS = 5_000;

interface Bucket {
  start: number;
  byReason: Map<WaitReason, number>;
}

/**
 * Integrates "calls waiting × time" by what held them. The queue reports after every dispatch
 * pass (`observe`): the reason and count hold until the next report, so every interval is
 * attributed once, to the reason in force during it.
 */
export class WaitTracker {
  private reason: WaitReason | null = null;
  private waiting = 0;
  private since: number;
  private readonly buckets: Bucket[] = [];

  constructor(private readonly clock: Pick<Clock, 'now'>) {
    this.since = clock.now();
  }

  /** From now on `waiting` calls wait, held by `reason` (null: none waits, or dispatch is under way). */
  observe(reason: WaitReason | null, waiting: number): void {
    const now = this.clock.now();
    this.fold(now);
    this.reason = waiting > 0 ? reason : null;
    this.waiting = waiting;
  }

  get current(): WaitReason | null {
    return this.reason;
  }

  /** Call-milliseconds waited over the last minute, by reason (the running interval included). */
  lastMinute(): WaitReasons['lastMinute'] {
    this.fold(this.clock.now());
    const byReason = Object.fromEntries(WAIT_REASONS.map((reason) => [reason, 0])) as Record<
      WaitReason,
      number
    >;
    let totalMs = 0;
    for (const bucket of this.buckets) {
      for (const [reason, ms] of bucket.byReason) {
        byReason[reason] += ms;
        totalMs += ms;
      }
    }
    let top: WaitReason | null = null;
    for (const reason of WAIT_REASONS) {
      byReason[reason] = Math.round(byReason[reason]);
      if (byReason[reason] > 0 && (top === null || byReason[reason] > byReason[top])) top = reason;
    }
    return { totalMs: Math.round(totalMs), byReason, top };
  }

  /** Adds the interval since the last report to its bucket(s), then drops buckets past the window. */
  private fold(now: number): void {
    let from = this.since;
    this.since = now;
    if (this.reason !== null && this.waiting > 0) {
      while (from < now) {
        const start = from - (from % BUCKET_MS);
        const until = Math.min(now, start + BUCKET_MS);
        this.bucket(start).byReason.set(
          this.reason,
          (this.bucket(start).byReason.get(this.reason) ?? 0) + (until - from) * this.waiting,
        );
        from = until;
      }
    }
    while (this.buckets.length > 0 && this.buckets[0].start + BUCKET_MS <= now - WINDOW_MS)
      this.buckets.shift();
  }

  private bucket(start: number): Bucket {
    const last = this.buckets[this.buckets.length - 1];
    if (last && last.start === start) return last;
    const bucket: Bucket = { start, byReason: new Map() };
    this.buckets.push(bucket);
    return bucket;
  }
}

/** `now`'s plain words for the panel and for `curl … | jq .queue.waitReasons.detail`. */
export function describeWaitReason(
  reason: WaitReason | null,
  snapshot: LimiterSnapshot,
  figures: { waitingCalls: number; providerHoldMs: number },
): string {
  const { limits, configured } = snapshot;
  const inFlight = `${snapshot.active} of ${limits.concurrency} in flight`;
  const rpm = `${snapshot.startsLastMinute} of ${limits.rpm} starts in the last minute`;
  switch (reason) {
    case null:
      return 'No call waits for a slot.';
    case 'paused':
      return `${figures.waitingCalls} calls wait: an operator paused the queue.`;
    case 'breaker_probe':
      return `${figures.waitingCalls} calls wait for the breaker's probe call (half-open) to succeed.`;
    case 'provider_hold':
      return `${figures.waitingCalls} calls wait: the provider's Retry-After holds every start for ${figures.providerHoldMs} ms more.`;
    case 'in_flight_limit':
      return `${figures.waitingCalls} calls wait for a free slot: ${inFlight}.`;
    case 'rpm_window':
      return `${figures.waitingCalls} calls wait for the rolling minute to free a start: ${rpm}.`;
    case 'aimd':
      return (
        `${figures.waitingCalls} calls wait on limits AIMD lowered after a 429: ${inFlight} (configured ` +
        `${configured.concurrency}), ${rpm} (configured ${configured.rpm}); they grow back while no 429 comes.`
      );
    case 'start_rate':
      return (
        `${figures.waitingCalls} calls wait for the start-rate window (the minute's ${limits.rpm} starts ` +
        `spread over short windows, or an earlier call on another instance first): ${inFlight}, ${rpm}.`
      );
    case 'tpm_window':
      return `${figures.waitingCalls} calls wait for the rolling minute's tokens: ${snapshot.tokensLastMinute} of ${limits.tpm ?? 0}.`;
    case 'limiter':
      return `${figures.waitingCalls} calls wait for the limiter's answer (the shared limits in Redis).`;
  }
}

/** Assembles `queue.waitReasons` from the queue's live state. */
export function buildWaitReasons(input: {
  tracker: WaitTracker;
  snapshot: LimiterSnapshot;
  now: number;
  waitingCalls: number;
  /** The classes (agents, gateway callers) in priority order. */
  order: readonly PriorityClass[];
  /** The waiting calls: each one's class and when it joined the queue. */
  waiting: ReadonlyArray<{ request: { agentType: PriorityClass }; enqueuedAt: number }>;
  room?: { explain?(): ChatLineRoom };
}): WaitReasons {
  const { snapshot, now, waitingCalls } = input;
  const reason = waitingCalls > 0 ? input.tracker.current : null;
  const providerHoldMs = snapshot.heldUntil > now ? Math.round(snapshot.heldUntil - now) : 0;
  const lanes = input.order.map((agent) => ({ agent, waiting: 0, oldestWaitMs: 0 }));
  const laneOf = new Map(lanes.map((lane) => [lane.agent, lane]));
  for (const call of input.waiting) {
    const lane = laneOf.get(call.request.agentType);
    if (!lane) continue;
    lane.waiting++;
    lane.oldestWaitMs = Math.max(lane.oldestWaitMs, Math.round(now - call.enqueuedAt));
  }
  const { limits, configured } = snapshot;
  const lowered = limits.concurrency < configured.concurrency || limits.rpm < configured.rpm;
  return {
    now: reason,
    detail: describeWaitReason(reason, snapshot, { waitingCalls, providerHoldMs }),
    waitingCalls,
    lastMinute: input.tracker.lastMinute(),
    aimd: lowered
      ? {
          maxConcurrency: limits.concurrency,
          maxRPM: limits.rpm,
          configuredConcurrency: configured.concurrency,
          configuredRPM: configured.rpm,
        }
      : null,
    lanes,
    chatLine: input.room?.explain?.() ?? null,
  };
}

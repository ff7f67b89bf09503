import type { Clock } from '../clock';
import type { ChatLineRoom } from './wait-reasons';

/**
 * Whether the provider has room for one more chat, as measured right now — the closed loop's
 * signal (docs/ARCHITECTURE.md, "Admission"). The LLM request queue reports what it holds as it
 * changes; the chat line asks `hasRoom()` before it starts a waiting chat and is woken (never polls)
 * when room may have opened.
 *
 * Room means: no call waits for a provider slot, and the running chats that hold no call right now
 * — starting, between two calls, in a tool — are fewer than the slots free plus the measured
 * average of such chats (without that margin every gap would leave a slot empty). Those chats come back
 * for a slot within moments: counting them as demand keeps a freed slot for the chat whose next call
 * is on its way instead of handing it to a newcomer, which would grow a standing queue (and, under a
 * host-first order, starve the later stages). So the running chats follow what the provider really
 * absorbs — whatever binds (RPM, concurrency, TPM, AIMD, a Retry-After hold: each shows up as calls
 * waiting or slots taken) — instead of a model of it. The rest wait in the line at no quota cost.
 * "Slots free" is what the request queue reports: the free concurrency slots, where RPM binds fewer
 * (the calls in flight the rate sustains, less those in flight, and the starts allowed right now;
 * request-queue.ts, reportRoom).
 */
/** How far back the average of chats between calls looks, ms (a few calls' worth of history). */
const IDLE_AVERAGE_MS = 5_000;

export class ProviderRoom {
  /** Calls waiting for a slot; calls of runs held out of dispatch (nobody listens) excluded. */
  private waiting = 0;
  /** Concurrency slots free at the last report (effective limit − calls in flight). */
  private free: number;
  /** Running chats (started, not ended), with how many calls each has queued or in flight. */
  private readonly running = new Map<string, number>();
  /** Running chats with no call queued or in flight. */
  private idle = 0;
  /** Time-weighted moving average of `idle`, and when `idle` last changed. */
  private idleAverage = 0;
  private idleSince: number;
  private listener: () => void = () => {};

  /**
   * `concurrency`: the configured limit, free until the queue first reports (a cold server).
   * `instances`: how many instances share the quota (the cluster's registry; 1 alone).
   */
  constructor(
    concurrency: number,
    private readonly clock: Pick<Clock, 'now'>,
    private readonly instances: () => number = () => 1,
  ) {
    this.free = concurrency;
    this.idleSince = clock.now();
  }

  /** The one party that starts chats when room opens (the chat line). */
  onRoom(listener: () => void): void {
    this.listener = listener;
  }

  /** Calls waiting for a slot right now (held runs' calls excluded). */
  get waitingCalls(): number {
    return this.waiting;
  }

  /** True when one more chat may start without its calls queueing behind others. */
  hasRoom(): boolean {
    if (this.waiting > 0) return false;
    // With none of ours running, one may start whatever the shared quota shows: its call then
    // waits its turn, and this instance is not starved by the others.
    if (this.running.size === 0) return true;
    // On average `averageIdle()` chats are away from the provider (between calls, in a tool): that
    // many more may run, or each gap would leave a slot empty. Measured, so a workload with long
    // tool calls or short provider calls keeps the provider busy, and one without gaps adds none.
    return this.idle < this.freeHere() + Math.ceil(this.averageIdle());
  }

  /**
   * This instance's part of the free capacity: the free slots are the cluster's (the shared quota's
   * figures), and every instance's line reads the same ones at the same moment — each admitting all
   * of them started N times as many chats as there was room for (seed 3's w10, three instances:
   * about thirty chats started within 3 s and 10 to 13 of them timed out). A share of 1/N each adds
   * up to the room. An instance whose chats alone want it fills it anyway, in a few rounds: each
   * started chat's call is dispatched, the queue reports the smaller free figure, and 1/N of that
   * may start.
   */
  private freeHere(): number {
    return this.free / Math.max(1, this.instances());
  }

  /** The figures `hasRoom()` decides on (the dashboard's "why calls wait" panel). */
  explain(): ChatLineRoom {
    return {
      hasRoom: this.hasRoom(),
      callsWaiting: this.waiting,
      freeSlots: this.free,
      freeSlotsHere: Math.floor(this.freeHere() * 100) / 100,
      runningChats: this.running.size,
      chatsBetweenCalls: this.idle,
      betweenCallsAllowance: Math.ceil(this.averageIdle()),
    };
  }

  /** `idle` averaged over the last IDLE_AVERAGE_MS or so (time-weighted). */
  private averageIdle(): number {
    const now = this.clock.now();
    const weight = 1 - Math.exp(-(now - this.idleSince) / IDLE_AVERAGE_MS);
    return this.idleAverage + weight * (this.idle - this.idleAverage);
  }

  /** Changes `idle`, first folding the time it held its old value into the average. */
  private changeIdle(by: number): void {
    this.idleAverage = this.averageIdle();
    this.idleSince = this.clock.now();
    this.idle += by;
  }

  // ---- reported by the request queue ----

  /** After every change in the queue: calls waiting (not held), and concurrency slots free. */
  update(waiting: number, freeSlots: number): void {
    this.waiting = waiting;
    this.free = freeSlots;
    if (waiting === 0) this.listener();
  }

  /**
   * A call of `runId` joined the queue. It counts as waiting at once, until the queue's next report
   * says otherwise: a chat started from the line can queue its first call within the same turn, and
   * the line, still starting chats in that turn, must see it.
   */
  callQueued(runId: string | undefined): void {
    this.waiting++;
    const calls = runId === undefined ? undefined : this.running.get(runId);
    if (calls === undefined) return;
    if (calls === 0) this.changeIdle(-1);
    this.running.set(runId!, calls + 1);
  }

  /** A call of `runId` left the queue or finished (released, dropped). */
  callEnded(runId: string | undefined): void {
    const calls = runId === undefined ? undefined : this.running.get(runId);
    if (calls === undefined || calls === 0) return;
    if (calls === 1) this.changeIdle(+1);
    this.running.set(runId!, calls - 1);
  }

  // ---- reported by the chat line ----

  chatStarted(runId: string): void {
    if (this.running.has(runId)) return;
    this.running.set(runId, 0);
    this.changeIdle(+1);
  }

  /** The chat ended: it needs no slot any more. */
  chatEnded(runId: string): void {
    const calls = this.running.get(runId);
    if (calls === undefined) return;
    this.running.delete(runId);
    if (calls === 0) this.changeIdle(-1);
    this.listener();
  }
}

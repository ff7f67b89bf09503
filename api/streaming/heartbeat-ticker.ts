import type { Clock, TimerHandle } from '../clock';

/** Something that can be sent a heartbeat; SseWriter is one. */
export interface HeartbeatTarget {
  heartbeat(): void;
}

/**
 * Streams pinged per event-loop turn: 10,000 pings in one pass held the loop ~150 ms, and a slice of
 * 1,000 still took 70–90 ms of one turn at the release of 10,000 streams (sse-capacity benchmark).
 * At the release a ping to a client already gone fails and tears its socket down in the same turn:
 * 100 (the streams waiting in the line's rotation are pinged by WaitingReads instead, see handOver).
 */
const PING_SLICE = 100;

/**
 * One timer for every open stream's heartbeat. Ten thousand idle streams would otherwise hold ten
 * thousand intervals; here each stream costs one Set entry, and a tick pings all of them. A stream
 * opened mid-interval gets its first ping within one interval, never later.
 */
export class HeartbeatTicker {
  private readonly targets = new Set<HeartbeatTarget>();
  /** Open streams someone else pings for now (WaitingReads, in each one's read turn). */
  private readonly handedOver = new Set<HeartbeatTarget>();
  private timer?: TimerHandle;
  private closed = false;
  private lastTick = 0;

  constructor(private readonly options: { clock: Clock; intervalMs: number }) {}

  get intervalMs(): number {
    return this.options.intervalMs;
  }

  /** When the last tick began (0 before the first): a stream not pinged since then is pinged by the next one. */
  get lastTickAt(): number {
    return this.lastTick;
  }

  /** Streams currently registered (open SSE responses). */
  get size(): number {
    return this.targets.size;
  }

  add(target: HeartbeatTarget): void {
    if (this.closed) return;
    this.targets.add(target);
    this.arm();
  }

  delete(target: HeartbeatTarget): void {
    this.targets.delete(target);
    this.handedOver.delete(target);
    // No streams, no timer: an idle server has nothing ticking.
    if (this.targets.size === 0) this.disarm();
  }

  /**
   * `target` stays open (and counted) but the ticks skip it: whoever took it over pings it. A
   * waiting stream whose socket is paused is pinged in its read turn, after its client's departure
   * could be read: a ping to a client already gone failed and tore its socket down outside those
   * turns (sse-capacity release).
   */
  handOver(target: HeartbeatTarget): void {
    if (this.targets.has(target)) this.handedOver.add(target);
  }

  /** The ticks ping `target` again. */
  takeBack(target: HeartbeatTarget): void {
    this.handedOver.delete(target);
  }

  close(): void {
    this.closed = true;
    this.targets.clear();
    this.handedOver.clear();
    this.disarm();
  }

  private arm(): void {
    if (this.timer || this.closed) return;
    this.timer = this.options.clock.setTimeout(() => this.tick(), this.options.intervalMs);
  }

  private disarm(): void {
    if (this.timer) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private tick(): void {
    this.timer = undefined;
    this.lastTick = this.options.clock.now();
    const pinged = this.targets.size - this.handedOver.size;
    if (pinged <= PING_SLICE) {
      // Deleting from a Set while iterating it is safe, so a target that closes while pinged needs no copy.
      for (const target of this.targets) if (!this.handedOver.has(target)) target.heartbeat();
    } else {
      // Many streams: the first slice now, the rest over the next turns, so other I/O runs in between.
      this.pingInSlices(
        [...this.targets].filter((target) => !this.handedOver.has(target)),
        0,
      );
    }
    if (this.targets.size > 0) this.arm();
  }

  private pingInSlices(targets: HeartbeatTarget[], from: number): void {
    if (this.closed) return;
    const end = Math.min(targets.length, from + PING_SLICE);
    for (let index = from; index < end; index++) {
      // A stream that closed (or was handed over) since the pass began is not written to.
      const target = targets[index];
      if (this.targets.has(target) && !this.handedOver.has(target)) target.heartbeat();
    }
    if (end < targets.length) this.options.clock.defer(() => this.pingInSlices(targets, end));
  }
}

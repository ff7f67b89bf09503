import type { Clock, TimerHandle } from '../clock';
import type { HeartbeatTarget, HeartbeatTicker } from './heartbeat-ticker';
import type { RunEvent } from './run-events';

/** What the rotation needs of a socket (net.Socket is one). */
export interface PausableSocket {
  pause(): unknown;
  resume(): unknown;
  readonly destroyed: boolean;
}

/** What the rotation writes to a waiting stream in its read turn (SseWriter is one). */
export interface WaitingStreamTarget extends HeartbeatTarget {
  send(record: RunEvent): void;
}

export interface WaitingReadsOptions {
  clock: Clock;
  /**
   * Sockets read at once while the rotation runs; with this many waiting streams or fewer, every
   * one reads all the time and nothing rotates.
   */
  sliceSize?: number;
  /** How long each slice reads before the next one takes over, ms. */
  periodMs?: number;
  /**
   * The open streams' heartbeat: while the rotation runs it pings the waiting streams itself, in
   * their read turns, and the ticker skips them.
   */
  heartbeat?: HeartbeatTicker;
}

/**
 * A bare Node server whose 10,000 idle sockets were all closed at once stalled 160–410 ms; read in
 * turns of 250 per 25 ms, 41–45 ms. In Troupe a departure costs more (the stream's close handlers,
 * the run's cancellation: ~0.4–0.7 ms of CPU each at the release, when the load generator leaves
 * Troupe about half a core): 50 per 5 ms (docs/BENCHMARKS.md, fifth pass; 100 per 10 ms held
 * release turns of 100–200 ms). Either way a round of 10,000 is ~1 s: when the turns are longer
 * than the period, each turn reads one slice.
 */
const DEFAULT_SLICE = 50;
const DEFAULT_PERIOD_MS = 5;

interface Member {
  readonly socket: PausableSocket;
  readonly run?: object;
  readonly target?: WaitingStreamTarget;
  /** Its socket reads now (its turn, or nothing rotates). */
  reading: boolean;
  /** The newest `queued` event that came while its socket was paused, sent in its read turn. */
  held?: RunEvent;
  /** When it was last pinged (or joined: its headers and place just written). */
  lastPingAt: number;
}

/**
 * Reads the sockets of streams waiting in the SSE line in turns once there are many of them, and
 * is then the one place that writes to them.
 *
 * A waiting stream's request is complete: its socket is read only to learn that the client left
 * (end of file). When thousands of clients leave at once, the kernel reports every one of those
 * ends in the same poll, and Node tears down every socket (parser, request, response, `close`
 * handlers, the run's cancellation) before a timer or another stream runs again: 10,000 released
 * streams stalled the loop 0.6–2.3 s (sse-capacity benchmark). Here, past `sliceSize` waiting
 * streams, their sockets are paused, and `sliceSize` of them read for `periodMs` at a time, round
 * the line: a client that leaves is noticed within one round (10,000 waiting: ~1 s), and at most a
 * slice of them is torn down per turn.
 *
 * A write to a client already gone but not read yet fails and tears its socket down in the turn it
 * is made, outside these turns: at the release, heartbeats and places told to paused sockets were
 * up to ~200 such teardowns a turn on top of a read turn's 100. So while the rotation runs, a paused
 * stream is written to only at the end of its read turn, once its departure could be read: the
 * newest place it was told meanwhile (`hold`), and a ping when the next round would come too late
 * for its heartbeat. A stream whose run starts leaves the rotation and reads again at once.
 */
export class WaitingReads {
  private readonly members = new Map<PausableSocket, Member>();
  /** The members of each waiting run (a run may have several listeners). */
  private readonly byRun = new Map<object, Set<Member>>();
  private readonly sliceSize: number;
  private readonly periodMs: number;
  private round: Member[] = [];
  private cursor = 0;
  private roundStartedAt = 0;
  /** How long the last full round took, ms (0 before one). */
  private lastRoundMs = 0;
  private reading: Member[] = [];
  private timer?: TimerHandle;
  /** Streams that were paused when the rotation stopped: written to once their sockets had a period to read. */
  private catchUp: Member[] = [];
  private catchUpTimer?: TimerHandle;
  private closed = false;

  constructor(private readonly options: WaitingReadsOptions) {
    this.sliceSize = options.sliceSize ?? DEFAULT_SLICE;
    this.periodMs = options.periodMs ?? DEFAULT_PERIOD_MS;
  }

  /** Waiting streams' sockets registered. */
  get size(): number {
    return this.members.size;
  }

  /** Sockets read in turns at the moment (0 while every waiting socket reads all the time). */
  get rotating(): boolean {
    return this.timer !== undefined;
  }

  /**
   * A stream of `run` waits in the line on `socket`, written to through `target`: it is read in its
   * turn from now on (or at once, if few wait).
   */
  add(socket: PausableSocket, run?: object, target?: WaitingStreamTarget): void {
    if (this.closed || this.members.has(socket)) return;
    const member: Member = { socket, run, target, reading: true, lastPingAt: this.options.clock.now() };
    this.members.set(socket, member);
    if (run !== undefined) {
      let members = this.byRun.get(run);
      if (!members) this.byRun.set(run, (members = new Set()));
      members.add(member);
    }
    if (this.rotating) this.pause(member);
    else if (this.members.size > this.sliceSize) this.startRotating();
  }

  /**
   * `record` (a `queued` event) for the stream on `socket`: true when that socket is paused, and the
   * record is held, the newest only, for the end of its read turn; false when the caller sends it.
   */
  hold(socket: PausableSocket, record: RunEvent): boolean {
    const member = this.members.get(socket);
    if (!member || member.reading || !member.target) return false;
    member.held = record;
    return true;
  }

  /** The stream left the line (its run started, ended, or its client left): its socket reads again. */
  delete(socket: PausableSocket): void {
    const member = this.members.get(socket);
    if (!member) return;
    this.members.delete(socket);
    // Whatever place it was still owed is stale: it left the line.
    member.held = undefined;
    if (member.run !== undefined) {
      const members = this.byRun.get(member.run);
      members?.delete(member);
      if (members?.size === 0) this.byRun.delete(member.run);
    }
    if (member.target) this.options.heartbeat?.takeBack(member.target);
    if (!socket.destroyed) socket.resume();
    member.reading = true;
    if (this.rotating && this.members.size <= this.sliceSize) this.stopRotating();
  }

  /**
   * `run` is about to start: its streams leave the rotation and read again now. True when one of
   * them was paused — a client that already left has not been noticed yet, and will be within a
   * moment (the caller lets it, before the run's first call).
   */
  readNow(run: object): boolean {
    const members = this.byRun.get(run);
    if (!members) return false;
    const wasPaused = [...members].some((member) => !member.reading);
    for (const member of [...members]) this.delete(member.socket);
    return wasPaused;
  }

  /** Every socket reads again and nothing rotates (shutdown). */
  close(): void {
    this.closed = true;
    this.stopRotating();
    if (this.catchUpTimer) this.options.clock.clearTimeout(this.catchUpTimer);
    this.catchUpTimer = undefined;
    this.catchUp = [];
    this.members.clear();
    this.byRun.clear();
  }

  private pause(member: Member): void {
    member.socket.pause();
    member.reading = false;
    if (member.target) this.options.heartbeat?.handOver(member.target);
  }

  private startRotating(): void {
    // The ticker pinged every stream at its last tick, those that joined since have just been written to.
    const lastTickAt = this.options.heartbeat?.lastTickAt ?? 0;
    for (const member of this.members.values()) {
      member.lastPingAt = Math.max(member.lastPingAt, lastTickAt);
      this.pause(member);
    }
    this.round = [];
    this.cursor = 0;
    this.lastRoundMs = 0;
    this.turn();
  }

  private stopRotating(): void {
    if (this.timer) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
    for (const member of this.members.values()) {
      if (member.target) this.options.heartbeat?.takeBack(member.target);
      if (member.reading) continue;
      if (!member.socket.destroyed) member.socket.resume();
      member.reading = true;
      this.catchUp.push(member);
    }
    this.round = [];
    this.reading = [];
    if (this.catchUp.length > 0 && !this.catchUpTimer && !this.closed) {
      this.catchUpTimer = this.options.clock.setTimeout(this.writeCatchUp, this.periodMs);
    }
  }

  /**
   * After the rotation stopped and a period of reading: the held places, and a ping for each stream
   * the ticker's next tick would reach more than an interval after the rotation's last write.
   */
  private readonly writeCatchUp = (): void => {
    this.catchUpTimer = undefined;
    const lastTickAt = this.options.heartbeat?.lastTickAt ?? 0;
    const members = this.catchUp;
    this.catchUp = [];
    for (const member of members) {
      // Gone, or paused again by a new rotation (it is written to in its turn then).
      if (this.members.get(member.socket) !== member || !member.reading) continue;
      this.write(member, member.lastPingAt < lastTickAt);
    }
  };

  /** The slice that read for the last period is written to and stops; the next one in the round starts. */
  private readonly turn = (): void => {
    this.timer = undefined;
    const now = this.options.clock.now();
    const intervalMs = this.options.heartbeat?.intervalMs;
    // When this slice is read next: a round from now (the last one's length, or what one should take),
    // doubled, as a round slows down when the turns are busy (a release).
    const roundMs = Math.max(this.lastRoundMs, Math.ceil(this.members.size / this.sliceSize) * this.periodMs);
    const nextTurnMs = 2 * roundMs;
    for (const member of this.reading) {
      if (this.members.get(member.socket) !== member) continue;
      const pingDue = intervalMs !== undefined && now - member.lastPingAt + nextTurnMs >= intervalMs;
      this.write(member, pingDue);
      this.pause(member);
    }
    this.reading = [];
    if (this.cursor >= this.round.length) {
      // A new round: the streams waiting now, those that joined during the last one included.
      if (this.round.length > 0) this.lastRoundMs = now - this.roundStartedAt;
      this.roundStartedAt = now;
      this.round = [...this.members.values()];
      this.cursor = 0;
    }
    const end = Math.min(this.round.length, this.cursor + this.sliceSize);
    for (; this.cursor < end; this.cursor++) {
      const member = this.round[this.cursor];
      if (this.members.get(member.socket) !== member) continue;
      member.socket.resume();
      member.reading = true;
      this.reading.push(member);
    }
    this.timer = this.options.clock.setTimeout(this.turn, this.periodMs);
  };

  /** What a stream is owed after a read: its held place, and a ping if `pingDue`; nothing to a socket gone. */
  private write(member: Member, pingDue: boolean): void {
    const target = member.target;
    if (!target || member.socket.destroyed) return;
    const held = member.held;
    member.held = undefined;
    if (held) target.send(held);
    if (!pingDue) return;
    target.heartbeat();
    member.lastPingAt = this.options.clock.now();
  }
}

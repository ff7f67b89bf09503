import type { Clock, TimerHandle } from '../clock';

/** What the rotation needs of a socket (net.Socket is one). */
export interface PausableSocket {
  pause(): unknown;
  resume(): unknown;
  readonly destroyed: boolean;
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
}

/**
 * A bare Node server whose 10,000 idle sockets were all closed at once stalled 160–410 ms; read in
 * turns of 250 per 25 ms, 41–45 ms. In Troupe a departure costs more (the stream's close handlers,
 * the run's cancellation): 100 per 10 ms (docs/BENCHMARKS.md). Either way a round of 10,000 is ~1 s.
 */
const DEFAULT_SLICE = 100;
const DEFAULT_PERIOD_MS = 10;

/**
 * Reads the sockets of streams waiting in the SSE line in turns once there are many of them.
 *
 * A waiting stream's request is complete: its socket is read only to learn that the client left
 * (end of file). When thousands of clients leave at once, the kernel reports every one of those
 * ends in the same poll, and Node tears down every socket (parser, request, response, `close`
 * handlers, the run's cancellation) before a timer or another stream runs again: 10,000 released
 * streams stalled the loop 0.6–2.3 s (sse-capacity benchmark). Here, past `sliceSize` waiting
 * streams, their sockets are paused, and `sliceSize` of them read for `periodMs` at a time, round
 * the line: a client that leaves is noticed within one round (10,000 waiting: ~1 s), and at most a
 * slice of them is torn down per turn. Writes still go out as they come; a stream whose run
 * starts leaves the rotation and reads again at once.
 */
export class WaitingReads {
  private readonly members = new Set<PausableSocket>();
  /** The sockets of each waiting run (a run may have several listeners). */
  private readonly byRun = new Map<object, Set<PausableSocket>>();
  private readonly runOf = new Map<PausableSocket, object>();
  private readonly sliceSize: number;
  private readonly periodMs: number;
  private round: PausableSocket[] = [];
  private cursor = 0;
  private reading: PausableSocket[] = [];
  private timer?: TimerHandle;
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

  /** A stream of `run` waits in the line on `socket`: it is read in its turn from now on (or at once, if few wait). */
  add(socket: PausableSocket, run?: object): void {
    if (this.closed || this.members.has(socket)) return;
    this.members.add(socket);
    if (run !== undefined) {
      this.runOf.set(socket, run);
      let sockets = this.byRun.get(run);
      if (!sockets) this.byRun.set(run, (sockets = new Set()));
      sockets.add(socket);
    }
    if (this.rotating) socket.pause();
    else if (this.members.size > this.sliceSize) this.startRotating();
  }

  /** The stream left the line (its run started, ended, or its client left): its socket reads again. */
  delete(socket: PausableSocket): void {
    if (!this.members.delete(socket)) return;
    const run = this.runOf.get(socket);
    if (run !== undefined) {
      this.runOf.delete(socket);
      const sockets = this.byRun.get(run);
      sockets?.delete(socket);
      if (sockets?.size === 0) this.byRun.delete(run);
    }
    if (!socket.destroyed) socket.resume();
    if (this.rotating && this.members.size <= this.sliceSize) this.stopRotating();
  }

  /**
   * `run` is about to start: its streams leave the rotation and read again now. True when one of
   * them was paused — a client that already left has not been noticed yet, and will be within a
   * moment (the caller lets it, before the run's first call).
   */
  readNow(run: object): boolean {
    const sockets = this.byRun.get(run);
    if (!sockets) return false;
    const wasPaused = this.rotating && [...sockets].some((socket) => !this.reading.includes(socket));
    for (const socket of [...sockets]) this.delete(socket);
    return wasPaused;
  }

  /** Every socket reads again and nothing rotates (shutdown). */
  close(): void {
    this.closed = true;
    this.stopRotating();
    this.members.clear();
    this.byRun.clear();
    this.runOf.clear();
  }

  private startRotating(): void {
    for (const socket of this.members) socket.pause();
    this.round = [];
    this.cursor = 0;
    this.turn();
  }

  private stopRotating(): void {
    if (this.timer) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
    for (const socket of this.members) if (!socket.destroyed) socket.resume();
    this.round = [];
    this.reading = [];
  }

  /** The slice that read for the last period stops; the next one in the round starts. */
  private readonly turn = (): void => {
    this.timer = undefined;
    for (const socket of this.reading) if (this.members.has(socket)) socket.pause();
    this.reading = [];
    if (this.cursor >= this.round.length) {
      // A new round: the streams waiting now, those that joined during the last one included.
      this.round = [...this.members];
      this.cursor = 0;
    }
    const end = Math.min(this.round.length, this.cursor + this.sliceSize);
    for (; this.cursor < end; this.cursor++) {
      const socket = this.round[this.cursor];
      if (!this.members.has(socket)) continue;
      socket.resume();
      this.reading.push(socket);
    }
    this.timer = this.options.clock.setTimeout(this.turn, this.periodMs);
  };
}

import type { Clock, TimerHandle } from '../clock';
import type { Run } from './run';
import { TurnBudget } from './turn-budget';

/** The wait a place in the line can expect, ms; null while nothing has been measured. */
export interface WaitEstimate {
  estimate(position: number): number | null;
}

/** A run waiting in the SSE line, as the line's news needs it. */
export interface WaitingPlace {
  readonly run: Run;
  readonly token: string;
  /** The position last told to the stream (0 = never queued). */
  toldPosition: number;
  /** The estimate last told with it, ms (null: not measured yet). */
  toldEstimateMs: number | null;
}

export interface LineNewsOptions {
  clock: Clock;
  /** The waiting line in arrival order (the limiter's; read here, never changed). */
  line: ReadonlyMap<string, WaitingPlace>;
  estimator: WaitEstimate;
  /** Runs served at once (SSE_MAX_CONCURRENT): the front is at least twice as long. */
  slots: number;
  /** A waiting stream is told its place at least this often, ms. */
  refreshMs?: number;
}

/** Places at the front of the line told of every move at once; the rest hear it on the refresh. */
const IMMEDIATE_POSITIONS = 100;
/**
 * Waiting runs told their place per event-loop turn during the periodic refresh. At a mass
 * departure nearly every place moves, and a write to a client already gone (not read yet, see
 * WaitingReads) tore its socket down in the same turn: 100 (now such a place waits for the
 * socket's read turn, see WaitingReads.hold).
 */
const REFRESH_SLICE = 100;
/**
 * Passes over the front per event-loop turn told at once (a microtask); later ones wait for the
 * turn's end. At a mass departure each pass wrote to up to 100 streams, most of them to clients
 * already gone (not read yet, see WaitingReads), whose sockets were then torn down in that same
 * turn: four passes a turn were ~400 such writes (sse-capacity release). One: the first move of a
 * turn is told at once, the rest with the turn's last pass.
 */
const FRONT_FLUSHES_PER_TURN = 1;
/**
 * Places told per event-loop turn by the front's passes and the periodic refresh together; what
 * is left is told the next turn. At a mass departure most of these writes go to clients already
 * gone (not read yet, see WaitingReads), and each tears its socket down in the turn it is made:
 * passes over the front plus a refresh slice were up to ~400 of them in one turn (sse-capacity
 * release). 100. A new stream is told its place on joining regardless. (Since then a place for a
 * paused socket is held for its read turn, see WaitingReads.hold; the bound still keeps a turn's
 * `queued` events, and their log entries, to 100.)
 */
const TELLS_PER_TURN = 100;
/**
 * Past the front of the line, the refresh tells a stream only when its place or its estimate moved
 * by at least this share since it was last told. Telling all 10,000 waiting streams every 3 s was
 * ~2,300 `queued` events a second that said what the stream already knew (position 5,000 moves a
 * few places between two refreshes) and most of the garbage the heap held (sse-capacity benchmark).
 */
const REFRESH_MIN_CHANGE = 0.05;
const DEFAULT_REFRESH_MS = 3000;

/**
 * What the SSE line tells its waiting streams: `queued {position, estimatedWaitMs, token}` when a
 * run joins (`joined`), at the front whenever places change (`moved`, at most one pass told at once
 * per event-loop turn), and every `refreshMs` to the front and to every stream
 * further back whose place or estimate moved by 5 %; at most 100 places told per turn. The line
 * itself (who waits, who starts) is SseLimiter's. A stream whose socket is paused in the
 * rotation (WaitingReads) hears a place at the end of its next read turn, the newest only.
 */
export class LineNews {
  private readonly refreshMs: number;
  private refreshTimer?: TimerHandle;
  private flushPending = false;
  private readonly frontFlushes: TurnBudget;
  private readonly tells: TurnBudget;
  private closed = false;

  constructor(private readonly options: LineNewsOptions) {
    this.refreshMs = options.refreshMs ?? DEFAULT_REFRESH_MS;
    this.frontFlushes = new TurnBudget(FRONT_FLUSHES_PER_TURN, options.clock);
    this.tells = new TurnBudget(TELLS_PER_TURN, options.clock);
  }

  /** `entry` joined the line at `position`: it hears its place now, and on the refreshes from now on. */
  joined(entry: WaitingPlace, position: number): void {
    this.tell(entry, position);
    this.armRefresh();
  }

  /** Nothing more is told, and the refresh stops (shutdown). */
  close(): void {
    this.closed = true;
    if (this.refreshTimer) this.options.clock.clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
  }

  /**
   * Positions changed: tell the line once, after the current burst of changes (a shutdown that
   * cancels thousands of waiting runs in one loop costs one pass, not one per run). A burst spread
   * over many I/O callbacks of one turn (thousands of clients leaving at once: microtasks run after
   * each callback) is told once per turn past the first few: a pass over the front per departure
   * was 100 writes per stream that left (sse-capacity benchmark's release).
   */
  moved(): void {
    if (this.flushPending || this.closed) return;
    this.flushPending = true;
    if (this.frontFlushes.take()) queueMicrotask(this.flush);
    else this.options.clock.defer(this.flush);
  }

  private readonly flush = (): void => {
    this.flushPending = false;
    this.flushFront();
  };

  /** Is what `entry` would be told at `position` news: at the front always, further back only a clear move? */
  private worthTelling(entry: WaitingPlace, position: number, front: number): boolean {
    if (position <= front || entry.toldPosition === 0) return true;
    const moved = Math.abs(entry.toldPosition - position) / entry.toldPosition;
    const estimate = this.options.estimator.estimate(position);
    const told = entry.toldEstimateMs;
    if (estimate === null || told === null) return moved >= REFRESH_MIN_CHANGE || estimate !== told;
    const drift = Math.abs(told - estimate) / Math.max(1, told);
    return moved >= REFRESH_MIN_CHANGE || drift >= REFRESH_MIN_CHANGE;
  }

  /** The places at the front of the line, told of every move at once and on every refresh. */
  private frontSize(): number {
    return Math.max(IMMEDIATE_POSITIONS, 2 * this.options.slots);
  }

  /**
   * Tells the front of the line whose place changed. Telling every one of 10,000 waiting streams
   * each time a slot frees cost ~12,000 events a second and stalled the event loop (sse-capacity
   * benchmark); a place far back moves slowly, and the periodic refresh tells it within refreshMs.
   */
  private flushFront(): void {
    if (this.closed) return;
    const front = this.frontSize();
    let position = 0;
    for (const entry of this.options.line.values()) {
      if (++position > front) break;
      if (entry.toldPosition === position) continue;
      if (!this.tells.take()) {
        // The rest of the front hears it next turn (a pass then tells whoever is still behind).
        if (!this.flushPending) {
          this.flushPending = true;
          this.options.clock.defer(this.flush);
        }
        break;
      }
      this.tell(entry, position);
    }
    if (this.options.line.size === 0 && this.refreshTimer) {
      this.options.clock.clearTimeout(this.refreshTimer);
      this.refreshTimer = undefined;
    }
  }

  private tell(entry: WaitingPlace, position: number): void {
    const estimatedWaitMs = this.options.estimator.estimate(position);
    entry.toldPosition = position;
    entry.toldEstimateMs = estimatedWaitMs;
    entry.run.emit('queued', { position, estimatedWaitMs, token: entry.token });
  }

  /**
   * One timer for the whole line: every refreshMs the front hears its place and estimate, and every
   * stream further back whose place or estimate moved by REFRESH_MIN_CHANGE since it was last told.
   */
  private armRefresh(): void {
    if (this.refreshTimer || this.closed) return;
    this.refreshTimer = this.options.clock.setTimeout(() => {
      this.refreshTimer = undefined;
      this.refreshAll();
      if (this.options.line.size > 0) this.armRefresh();
    }, this.refreshMs);
  }

  /**
   * The periodic refresh, in slices of REFRESH_SLICE runs with the event loop free in between:
   * telling 10,000 waiting streams in one pass stalled every other stream for ~150 ms every 3 s
   * (sse-capacity benchmark). Places are those at the start of the pass.
   */
  private refreshAll(): void {
    const entries = [...this.options.line.values()];
    const front = this.frontSize();
    let index = 0;
    const slice = () => {
      if (this.closed) return;
      const end = Math.min(entries.length, index + REFRESH_SLICE);
      for (; index < end; index++) {
        const entry = entries[index];
        // Runs that started or left since the pass began are not told a stale place.
        if (this.options.line.get(entry.token) !== entry || !this.worthTelling(entry, index + 1, front))
          continue;
        if (!this.tells.take()) break;
        this.tell(entry, index + 1);
      }
      if (index < entries.length) this.options.clock.defer(slice);
    };
    slice();
  }
}

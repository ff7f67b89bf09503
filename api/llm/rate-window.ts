/**
 * Rolling-window limits as a provider enforcing RPM/TPM sees them.
 *
 * StartWindow is a sliding log of start timestamps kept in a ring buffer. "At most L starts in any
 * window of W ms" holds iff the L-th most recent start is at least W ms old, so both the check and
 * "when is the next start possible" are O(1): no token bucket, which would let a full bucket plus the
 * refill burst past the cap inside one rolling minute.
 *
 * Providers also refuse sudden surges below the minute cap (Volcengine Ark's growth-rate limit,
 * Alibaba's per-second limits, OpenAI enforcing over shorter periods), so a second, short window
 * spreads the minute's allowance: at most ceil(L * burstWindowMs / windowMs) starts per burst window
 * (by default about ten starts' worth: spreadWindowMs).
 */

/**
 * About how many starts one spreading sub-window lets through. Fewer and the allowance, rounded up
 * per sub-window, would overshoot the minute's average by more than a tenth (and the minute cap then
 * stalls the last seconds of each minute); more and calls go out in bursts at full speed until the
 * sub-window's cap, then stall for the rest of it — seconds on which every waiting chat's progress
 * stops, which read as a slow provider.
 */
const STARTS_PER_SPREAD_WINDOW = 10;

/** The spreading sub-window for a minute limit of `rpm`: ~10 starts' worth, within 1-10 s. */
export function spreadWindowMs(rpm: number): number {
  if (!(rpm > 0)) return 10_000;
  return Math.min(10_000, Math.max(1_000, Math.round((60_000 * STARTS_PER_SPREAD_WINDOW) / rpm)));
}

export interface RateWindowOptions {
  /** The largest limit ever asked for; sizes the ring buffer (it grows lazily up to this). */
  capacity: number;
  windowMs?: number;
  /** Length of the spreading sub-window; 0 turns spreading off; default spreadWindowMs(capacity). */
  burstWindowMs?: number;
}

export class StartWindow {
  readonly windowMs: number;
  readonly burstWindowMs: number;
  private readonly capacity: number;
  private buffer: Float64Array;
  /** Index where the next start is written. */
  private head = 0;
  private size = 0;

  constructor(options: RateWindowOptions) {
    this.capacity = Math.max(1, Math.floor(options.capacity));
    this.windowMs = options.windowMs ?? 60_000;
    this.burstWindowMs = options.burstWindowMs ?? spreadWindowMs(this.capacity);
    // Start small: a huge configured RPM (10M) must not allocate 80 MB up front.
    this.buffer = new Float64Array(Math.min(this.capacity, 1024));
  }

  /** Starts allowed per burst window for a minute limit of `limit`. */
  burstLimit(limit: number): number {
    if (this.burstWindowMs <= 0 || this.burstWindowMs >= this.windowMs) return limit;
    return Math.max(1, Math.ceil((limit * this.burstWindowMs) / this.windowMs));
  }

  /** The earliest time a start is allowed under `limit` (≤ now means "now"). */
  nextAllowedAt(limit: number, now: number): number {
    const effective = Math.min(Math.max(1, Math.floor(limit)), this.capacity);
    let at = now;
    const minute = this.kthMostRecent(effective);
    if (minute !== undefined) at = Math.max(at, minute + this.windowMs);
    if (this.burstWindowMs > 0 && this.burstWindowMs < this.windowMs) {
      const burst = this.kthMostRecent(this.burstLimit(effective));
      if (burst !== undefined) at = Math.max(at, burst + this.burstWindowMs);
    }
    return at;
  }

  /** How many starts `limit` allows at `now` before the minute or the spreading sub-window is full. */
  availableAt(limit: number, now: number): number {
    const effective = Math.min(Math.max(1, Math.floor(limit)), this.capacity);
    let available = effective - this.countSince(now - this.windowMs);
    if (this.burstWindowMs > 0 && this.burstWindowMs < this.windowMs)
      available = Math.min(available, this.burstLimit(effective) - this.countSince(now - this.burstWindowMs));
    return Math.max(0, available);
  }

  /** The most recent start recorded (undefined when none): records must not go back before it. */
  latest(): number | undefined {
    return this.kthMostRecent(1);
  }

  /** Records a start at `now`; callers check `nextAllowedAt` first. */
  record(now: number): void {
    if (this.size === this.buffer.length && this.buffer.length < this.capacity) this.grow();
    this.buffer[this.head] = now;
    this.head = (this.head + 1) % this.buffer.length;
    if (this.size < this.buffer.length) this.size++;
  }

  /** Starts in the last `windowMs` (the status page's currentRPM). Binary search: O(log n). */
  countSince(since: number): number {
    let low = 1;
    let high = this.size;
    let found = 0;
    // kthMostRecent(k) decreases as k grows; find the largest k with timestamp > since.
    while (low <= high) {
      const middle = (low + high) >> 1;
      if (this.kthMostRecent(middle)! > since) {
        found = middle;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    return found;
  }

  private kthMostRecent(k: number): number | undefined {
    if (k > this.size) return undefined;
    const length = this.buffer.length;
    return this.buffer[(this.head - k + length * 2) % length];
  }

  private grow(): void {
    const next = new Float64Array(Math.min(this.capacity, this.buffer.length * 2));
    // Unroll the ring oldest-first so indices stay contiguous after growing.
    for (let k = this.size; k >= 1; k--) next[this.size - k] = this.kthMostRecent(k)!;
    this.buffer = next;
    this.head = this.size % next.length;
  }
}

/** A token reservation; `settle` corrects it with the real usage once the call ends. */
export interface TokenReservation {
  readonly at: number;
  tokens: number;
  /** True while the reservation still counts against the window. */
  counted: boolean;
}

/**
 * Tokens per rolling window, reserve-then-settle (docs/ARCHITECTURE.md §7): a call reserves its estimate
 * (prompt + max output) when it starts, and the real usage replaces the estimate afterwards. The
 * reservation keeps its start time, which is when the provider counts it.
 */
export class TokenWindow {
  private entries: TokenReservation[] = [];
  private first = 0;
  private total = 0;

  constructor(
    private readonly limit: number,
    private readonly windowMs = 60_000,
  ) {}

  get enabled(): boolean {
    return this.limit > 0;
  }

  /**
   * The earliest time `tokens` fit under `limit` (the effective limit, never above the configured
   * one); a request larger than the whole limit waits for an empty window.
   */
  nextAllowedAt(tokens: number, now: number, limit = this.limit): number {
    if (!this.enabled) return now;
    this.expire(now);
    const cap = Math.max(1, Math.min(limit, this.limit));
    const wanted = Math.min(tokens, cap);
    if (this.total + wanted <= cap) return now;
    let remaining = this.total;
    for (let index = this.first; index < this.entries.length; index++) {
      const entry = this.entries[index];
      remaining -= entry.tokens;
      if (remaining + wanted <= cap) return entry.at + this.windowMs;
    }
    return now;
  }

  reserve(tokens: number, now: number): TokenReservation {
    const reservation: TokenReservation = { at: now, tokens: Math.max(0, tokens), counted: this.enabled };
    if (this.enabled) {
      this.entries.push(reservation);
      this.total += reservation.tokens;
    }
    return reservation;
  }

  /** Replaces the estimate with the real count (only while it is still inside the window). */
  settle(reservation: TokenReservation, actualTokens: number, now: number): void {
    if (!this.enabled) return;
    this.expire(now);
    const actual = Math.max(0, actualTokens);
    if (reservation.counted) this.total += actual - reservation.tokens;
    reservation.tokens = actual;
  }

  used(now: number): number {
    this.expire(now);
    return this.total;
  }

  private expire(now: number): void {
    while (this.first < this.entries.length && this.entries[this.first].at <= now - this.windowMs) {
      const entry = this.entries[this.first++];
      this.total -= entry.tokens;
      entry.counted = false;
    }
    // Compact occasionally so the array does not grow without bound.
    if (this.first > 1024 && this.first * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.first);
      this.first = 0;
    }
  }
}

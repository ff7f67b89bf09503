import type { Clock } from '../clock';
import type { Admission, ChatEnd } from './llm-gateway';

const RATIO_MAX_AGE_MS = 30_000;

interface AdmittedChat {
  admittedAt: number;
  /** The model's time for the chat, before the slowdown (undefined when admitted before any measurement). */
  modelMs: number | undefined;
  calls: number;
}

/**
 * The chats admission let in and that have not ended, and what the finished ones teach: how many
 * calls a chat really makes (tool rounds and revisions add to the four agents) and how much slower
 * than its estimate a chat really runs. Both are measured, not tuned.
 */
export class AdmittedChats {
  private readonly chats = new Map<string, AdmittedChat>();
  private finishedChats = 0;
  private finishedCalls = 0;
  /** Recent (actual / model) chat times and when each chat finished, newest last. */
  private readonly ratios: Array<{ ratio: number; at: number }> = [];
  /** Ratios recorded so far (never decreases): tells a cached sort that a chat finished since. */
  private finishedRatios = 0;
  private sorted?: { ratios: readonly number[]; validThrough: number; finished: number };

  constructor(
    private readonly clock: Clock,
    private readonly options: {
      minimumChats?: number;
      ratioWindow?: number;
      /** Ratios older than this no longer speak for the load (see slowdown()). */
      ratioMaxAgeMs?: number;
    } = {},
  ) {}

  get count(): number {
    return this.chats.size;
  }

  has(runId: string): boolean {
    return this.chats.has(runId);
  }

  admit(runId: string, modelMs: number | undefined): Admission {
    this.chats.set(runId, { admittedAt: this.clock.now(), modelMs, calls: 0 });
    return { release: (end) => this.release(runId, end) };
  }

  /** One call of the chat was enqueued. Returns whether the chat is an admitted one. */
  recordCall(runId: string): boolean {
    const chat = this.chats.get(runId);
    if (!chat) return false;
    chat.calls++;
    return true;
  }

  /** Calls a chat really makes, on average, once enough chats have finished to say; else undefined. */
  meanCallsPerChat(): number | undefined {
    return this.finishedChats >= this.minimumChats ? this.finishedCalls / this.finishedChats : undefined;
  }

  /**
   * How much slower than admission's model chats really finished: the 90th percentile of
   * actual / model time over recent completed chats — this instance's and, in a cluster, the ones
   * the other instances published (`othersRatios`) — within [1, 4]; 1 until `minimumChats` have.
   * One of N instances finishes only 1/N of the chats: its own percentile of a dozen swings, and
   * instances would take turns refusing; over all of them the cluster decides as one instance would.
   */
  slowdown(othersRatios: readonly number[] = []): number {
    const own = this.sortedRecentRatios();
    const others = othersRatios.filter((ratio) => Number.isFinite(ratio));
    const ratios = others.length === 0 ? own : [...own, ...others].sort((a, b) => a - b);
    if (ratios.length < this.minimumChats) return 1;
    const p90 = ratios[Math.min(ratios.length - 1, Math.floor(ratios.length * 0.9))];
    return Math.min(4, Math.max(1, p90));
  }

  /**
   * The ratios that speak for the load now: those of chats finished within the last 30 s (about
   * one chat target: RATIO_MAX_AGE_MS) when at least `minimumChats` did, else the newest
   * 2 × minimum (or as many as finished). A transient (a cold start's first minute, an outage)
   * must not keep refusing chats for as long as it takes to finish a hundred more; and in a
   * cluster an instance shares what it has from its first chats on, or the cluster would measure
   * nothing until each instance alone had finished enough.
   */
  recentRatios(): number[] {
    return this.ratios.slice(this.recentSelection().first).map((entry) => entry.ratio);
  }

  /** Where the recent ratios begin, and until when (clock time) that stays so without a new ratio. */
  private recentSelection(): { first: number; validThrough: number } {
    const maxAge = this.options.ratioMaxAgeMs ?? RATIO_MAX_AGE_MS;
    const since = this.clock.now() - maxAge;
    const first = this.ratios.findIndex((entry) => entry.at >= since);
    if (first >= 0 && this.ratios.length - first >= this.minimumChats) {
      // The window holds enough: it changes when its oldest ratio ages out.
      return { first, validThrough: this.ratios[first].at + maxAge };
    }
    // Too few in the window: the newest ones stand until another chat finishes, however old.
    return { first: Math.max(0, this.ratios.length - this.minimumChats * 2), validThrough: Infinity };
  }

  /**
   * recentRatios() sorted, kept until a chat finishes or a ratio ages out of the window: every
   * admission asks for the slowdown, and sorting a hundred ratios per chat was ~1 % of a one-call
   * chat's CPU (cpu benchmark).
   */
  private sortedRecentRatios(): readonly number[] {
    const cached = this.sorted;
    if (cached && cached.finished === this.finishedRatios && this.clock.now() <= cached.validThrough)
      return cached.ratios;
    const { first, validThrough } = this.recentSelection();
    const ratios = this.ratios.slice(first).map((entry) => entry.ratio);
    ratios.sort((a, b) => a - b);
    this.sorted = { ratios, validThrough, finished: this.finishedRatios };
    return ratios;
  }

  /** The chat ended. Idempotent. */
  private release(runId: string, end: ChatEnd = 'failed'): void {
    const chat = this.chats.get(runId);
    if (!chat) return;
    this.chats.delete(runId);
    if (end !== 'completed' || chat.calls === 0) return;
    this.finishedChats++;
    this.finishedCalls += chat.calls;
    if (chat.modelMs !== undefined && chat.modelMs > 0) {
      const now = this.clock.now();
      this.ratios.push({ ratio: (now - chat.admittedAt) / chat.modelMs, at: now });
      this.finishedRatios++;
      if (this.ratios.length > (this.options.ratioWindow ?? 100)) this.ratios.shift();
    }
  }

  private get minimumChats(): number {
    return this.options.minimumChats ?? 10;
  }
}

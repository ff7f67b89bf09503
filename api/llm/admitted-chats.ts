import type { Clock } from '../clock';
import type { Admission, ChatEnd } from './llm-gateway';

const RATIO_MAX_AGE_MS = 30_000;

export interface MeasuredSlowdown {
  slowdown: number;
  /** Finished chats it was measured on. */
  chats: number;
}

/**
 * Several instances' slowdowns as one (weighted by the chats each rests on): one of N instances
 * finishes a third of the chats, and its 90th percentile alone swings with a few of them, turning
 * admission on and off across the cluster; pooled, the cluster decides as one instance would.
 */
export function pooledSlowdown(measured: MeasuredSlowdown[]): number {
  let chats = 0;
  let weighted = 0;
  for (const entry of measured) {
    if (!(entry.chats > 0) || !Number.isFinite(entry.slowdown)) continue;
    chats += entry.chats;
    weighted += entry.slowdown * entry.chats;
  }
  return chats === 0 ? 1 : Math.min(4, Math.max(1, weighted / chats));
}

interface AdmittedChat {
  admittedAt: number;
  /** The model's time for the chat, before the slowdown (undefined when admitted before any measurement). */
  estimatedMs: number | undefined;
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
  /** Recent (actual / estimated) chat times and when each chat finished, newest last. */
  private readonly ratios: Array<{ ratio: number; at: number }> = [];

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

  admit(runId: string, estimatedMs: number | undefined): Admission {
    this.chats.set(runId, { admittedAt: this.clock.now(), estimatedMs, calls: 0 });
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
   * actual / estimated over recent completed chats, within [1, 4]; 1 until enough have finished.
   * Recent means finished within the last 30 s (about one chat target: RATIO_MAX_AGE_MS) when at
   * least `minimumChats` did, else the newest 2 × minimum: a transient (a cold start's first
   * minute, an outage) must not keep refusing chats for as long as it takes this instance to finish
   * a hundred more — one of N instances finishes only 1/N of the cluster's chats.
   */
  slowdown(): number {
    return this.measuredSlowdown().slowdown;
  }

  /** The slowdown and how many finished chats it rests on (0: not enough yet, and it is 1). */
  measuredSlowdown(): MeasuredSlowdown {
    const needed = this.minimumChats * 2;
    if (this.ratios.length < needed) return { slowdown: 1, chats: 0 };
    const since = this.clock.now() - (this.options.ratioMaxAgeMs ?? RATIO_MAX_AGE_MS);
    let first = this.ratios.findIndex((entry) => entry.at >= since);
    if (first < 0 || this.ratios.length - first < this.minimumChats) first = this.ratios.length - needed;
    const sorted = this.ratios
      .slice(first)
      .map((entry) => entry.ratio)
      .sort((a, b) => a - b);
    const p90 = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.9))];
    return { slowdown: Math.min(4, Math.max(1, p90)), chats: sorted.length };
  }

  /** The chat ended. Idempotent. */
  private release(runId: string, end: ChatEnd = 'failed'): void {
    const chat = this.chats.get(runId);
    if (!chat) return;
    this.chats.delete(runId);
    if (end !== 'completed' || chat.calls === 0) return;
    this.finishedChats++;
    this.finishedCalls += chat.calls;
    if (chat.estimatedMs !== undefined && chat.estimatedMs > 0) {
      const now = this.clock.now();
      this.ratios.push({ ratio: (now - chat.admittedAt) / chat.estimatedMs, at: now });
      if (this.ratios.length > (this.options.ratioWindow ?? 100)) this.ratios.shift();
    }
  }

  private get minimumChats(): number {
    return this.options.minimumChats ?? 10;
  }
}

import type { Clock } from '../clock';
import type { Admission, ChatEnd } from './llm-gateway';

interface AdmittedChat {
  admittedAt: number;
  /** What admission expected the chat to take, ms (undefined when admitted before any measurement). */
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
  /** Recent (actual / estimated) chat times, newest last. */
  private readonly ratios: number[] = [];

  constructor(
    private readonly clock: Clock,
    private readonly options: { minimumChats?: number; ratioWindow?: number } = {},
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
   * How much slower than admission's estimate chats really finished: the 90th percentile of
   * actual / estimated over recent completed chats, within [1, 4]; 1 until enough have finished.
   */
  slowdown(): number {
    if (this.ratios.length < this.minimumChats * 2) return 1;
    const sorted = [...this.ratios].sort((a, b) => a - b);
    const p90 = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.9))];
    return Math.min(4, Math.max(1, p90));
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
      this.ratios.push((this.clock.now() - chat.admittedAt) / chat.estimatedMs);
      if (this.ratios.length > (this.options.ratioWindow ?? 100)) this.ratios.shift();
    }
  }

  private get minimumChats(): number {
    return this.options.minimumChats ?? 10;
  }
}

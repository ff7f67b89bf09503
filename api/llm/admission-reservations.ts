import type { Admission } from './llm-gateway';

/**
 * Calls that admitted chats are expected to make but have not enqueued yet. Admission control counts
 * them as work ahead: without them, a burst of new chats looks cheap (one queued Host call each)
 * while it has really committed the provider to four calls each.
 */
export class AdmissionReservations {
  private readonly remaining = new Map<string, { left: number; made: number }>();
  private outstanding = 0;
  private finishedChats = 0;
  private finishedCalls = 0;

  /** Calls reserved and not yet enqueued, over all admitted chats. */
  get total(): number {
    return this.outstanding;
  }

  /** Chats admitted and not yet released. */
  get chats(): number {
    return this.remaining.size;
  }

  reserve(runId: string, calls: number): Admission {
    this.release(runId);
    const count = Math.max(0, Math.floor(calls));
    this.remaining.set(runId, { left: count, made: 0 });
    this.outstanding += count;
    return { release: () => this.release(runId) };
  }

  /**
   * One call of the run was enqueued: it is now queued work, no longer a reservation. Returns whether
   * a reservation covered it (then admission already counted it against the queue bound).
   */
  consume(runId: string): boolean {
    const entry = this.remaining.get(runId);
    if (!entry) return false;
    entry.made++;
    if (entry.left === 0) return false;
    entry.left--;
    this.outstanding--;
    return true;
  }

  /**
   * Calls a chat really makes, on average over the chats that made any (revisions and tool rounds
   * add to the expected four); undefined until enough chats have ended to say.
   */
  meanCallsPerChat(minimumChats = 10): number | undefined {
    return this.finishedChats >= minimumChats ? this.finishedCalls / this.finishedChats : undefined;
  }

  /** The chat ended: whatever it did not use is free again. Idempotent. */
  release(runId: string): void {
    const entry = this.remaining.get(runId);
    if (!entry) return;
    this.remaining.delete(runId);
    this.outstanding -= entry.left;
    if (entry.made > 0) {
      this.finishedChats++;
      this.finishedCalls += entry.made;
    }
  }
}

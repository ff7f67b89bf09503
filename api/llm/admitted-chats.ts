import type { Admission } from './llm-gateway';

/**
 * The chats admission let in and that have not ended, with the calls each has made: every call of
 * an admitted chat is served (the queue bound sheds only calls from outside admitted chats), and
 * the status page reports how many there are.
 */
export class AdmittedChats {
  private readonly chats = new Map<string, { calls: number }>();

  get count(): number {
    return this.chats.size;
  }

  has(runId: string): boolean {
    return this.chats.has(runId);
  }

  admit(runId: string): Admission {
    this.chats.set(runId, { calls: 0 });
    return { release: () => this.chats.delete(runId) };
  }

  /** One call of the chat was enqueued. Returns whether the chat is an admitted one. */
  recordCall(runId: string): boolean {
    const chat = this.chats.get(runId);
    if (!chat) return false;
    chat.calls++;
    return true;
  }
}

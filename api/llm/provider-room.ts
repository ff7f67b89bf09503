/**
 * Whether the provider has room for one more chat, as measured right now — the closed loop's
 * signal (docs/ARCHITECTURE.md, "Admission"). The LLM request queue reports what it holds as it
 * changes; the chat line asks `hasRoom()` before it starts a waiting chat and is woken (never polls)
 * when room may have opened.
 *
 * Room means: no call of a running chat waits for a provider slot, and the chats started but not yet
 * calling (store writes, prompt building) are fewer than the slots free now. So the number of
 * running chats follows what the provider really absorbs — whatever the quota is bound by (RPM,
 * concurrency, TPM, AIMD, a Retry-After hold: each shows up as calls waiting) — instead of a model
 * of it. The rest wait in the line, where they cost no quota.
 */
export class ProviderRoom {
  /** Calls waiting for a slot; calls of runs held out of dispatch (nobody listens) excluded. */
  private waiting = 0;
  /** Concurrency slots free at the last report (effective limit − calls in flight). */
  private free: number;
  /** Chats started whose first call has not reached the queue yet. */
  private readonly starting = new Set<string>();
  private listener: () => void = () => {};

  /** `concurrency`: the configured limit, free until the queue first reports (a cold server). */
  constructor(concurrency: number) {
    this.free = concurrency;
  }

  /** The one party that starts chats when room opens (the chat line). */
  onRoom(listener: () => void): void {
    this.listener = listener;
  }

  /** True when one more chat may start without its calls queueing behind others. */
  hasRoom(): boolean {
    if (this.waiting > 0) return false;
    // One chat may always be starting: with nothing waiting its call at worst waits for the next
    // free slot, which keeps the provider busy through the gaps between a chat's calls.
    return this.starting.size < Math.max(1, this.free);
  }

  /** Calls waiting for a slot now (the queue reports after every change). */
  get waitingCalls(): number {
    return this.waiting;
  }

  get startingChats(): number {
    return this.starting.size;
  }

  // ---- reported by the request queue ----

  /** After every change in the queue: calls waiting (not held), and concurrency slots free. */
  update(waiting: number, freeSlots: number): void {
    this.waiting = waiting;
    this.free = freeSlots;
    if (waiting === 0) this.listener();
  }

  /** A run's call joined the queue: the run is no longer "starting". */
  callQueued(runId: string | undefined): void {
    if (runId !== undefined) this.starting.delete(runId);
  }

  // ---- reported by the chat line ----

  chatStarted(runId: string): void {
    this.starting.add(runId);
  }

  /** The chat ended (or its first call was answered without the queue, e.g. from the cache). */
  chatEnded(runId: string): void {
    if (this.starting.delete(runId)) this.listener();
  }
}

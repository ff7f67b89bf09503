import type { Clock, TimerHandle } from '../clock';
import type { QueueEntry, QueueLanes } from './queue-lanes';
import type { RunLedger } from './run-ledger';

export interface BehindWhileWaitingOptions {
  clock: Clock;
  ledger: Pick<RunLedger, 'lateDeadline'>;
  /** How often the waiting calls are looked at while some of a chat wait in a class lane, ms. */
  everyMs: number;
  /** The queue's waiting calls, and the move of one to the late calls. */
  lanes: Pick<QueueLanes, 'entries' | 'goLate'>;
  /** Calls moved: the queue dispatches again. */
  moved: () => void;
}

/**
 * A chat can fall behind while one of its calls waits: the run ledger checks a chat's pace as
 * each call queues (run-ledger.ts, "Chats falling behind"), but a call that was on pace then may
 * wait behind newer chats' calls of classes ranked above it, or behind late chats, until its chat
 * can no longer finish (seen: a Reporter call queued on pace, then 9 s behind other calls, its
 * chat timed out). While calls of chats wait in the class lanes, this check asks the ledger again
 * every `everyMs` for each of them — the time waited so far now counts in the chat's pace — and a
 * call whose chat is now behind goes late at once, with its chat's later calls.
 */
export class BehindWhileWaiting {
  private timer?: TimerHandle;

  constructor(private readonly options: BehindWhileWaitingOptions) {}

  /** A call entered the lanes: a chat's call in a class lane keeps the check armed. */
  entered(entry: QueueEntry): void {
    if (entry.lateDeadline === undefined && entry.request.runId !== undefined) this.arm();
  }

  private readonly check = (): void => {
    this.timer = undefined;
    const behind: Array<[QueueEntry, number]> = [];
    let onPace = 0;
    for (const entry of this.options.lanes.entries()) {
      const runId = entry.request.runId;
      if (entry.lateDeadline !== undefined || runId === undefined) continue;
      const lateDeadline = this.options.ledger.lateDeadline(runId);
      if (lateDeadline === undefined) onPace++;
      else behind.push([entry, lateDeadline]);
    }
    for (const [entry, lateDeadline] of behind) this.options.lanes.goLate(entry, lateDeadline);
    if (behind.length > 0) this.options.moved();
    if (onPace > 0) this.arm();
  };

  private arm(): void {
    // One timer, re-armed only while calls of chats wait on pace (the system clock's is unref'd).
    if (this.timer) return;
    this.timer = this.options.clock.setTimeout(this.check, this.options.everyMs);
  }
}

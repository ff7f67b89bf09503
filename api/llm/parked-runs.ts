import type { QueueEntry } from './queue-lanes';

/**
 * The request queue's held runs: runs nobody listens to, with their waiting calls. A held call keeps
 * its deadline but takes no place in the lanes, so it spends no slot and no start until its run is
 * let go (the queue's park / unpark).
 */
export class ParkedRuns {
  private readonly runs = new Map<string, Set<QueueEntry>>();
  private held = 0;

  /** Calls held, over every parked run. */
  get size(): number {
    return this.held;
  }

  /** Starts holding `runId`'s calls; false when it was held already. */
  park(runId: string): boolean {
    if (this.runs.has(runId)) return false;
    this.runs.set(runId, new Set());
    return true;
  }

  /** Holds `entry` when its run is parked; false when it is not (the entry stays as it was). */
  hold(entry: QueueEntry): boolean {
    const runId = entry.request.runId;
    const calls = runId === undefined ? undefined : this.runs.get(runId);
    if (!calls) return false;
    entry.state = 'parked';
    calls.add(entry);
    this.held++;
    return true;
  }

  /** Lets `runId` go: its held calls, for the queue to put back (undefined when it was not held). */
  unpark(runId: string): QueueEntry[] | undefined {
    const calls = this.runs.get(runId);
    if (!calls) return undefined;
    this.runs.delete(runId);
    this.held -= calls.size;
    return [...calls];
  }

  /** A held call left (its deadline, an abort, a clear). */
  forget(entry: QueueEntry): void {
    if (this.runs.get(entry.request.runId!)?.delete(entry)) this.held--;
  }

  entries(): QueueEntry[] {
    const entries: QueueEntry[] = [];
    for (const calls of this.runs.values()) entries.push(...calls);
    return entries;
  }
}

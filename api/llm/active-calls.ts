import type { PriorityClass } from './priority-class';
import type { QueueEntry } from './queue-lanes';

/** The calls that hold a permit now, and how many of each priority class. */
export class ActiveCalls {
  private readonly entries = new Set<QueueEntry>();
  private readonly byClass = new Map<PriorityClass, number>();

  add(entry: QueueEntry): void {
    this.entries.add(entry);
    const name = entry.request.agentType;
    this.byClass.set(name, (this.byClass.get(name) ?? 0) + 1);
  }

  delete(entry: QueueEntry): void {
    if (!this.entries.delete(entry)) return;
    const name = entry.request.agentType;
    this.byClass.set(name, (this.byClass.get(name) ?? 1) - 1);
  }

  get size(): number {
    return this.entries.size;
  }

  countOf(name: PriorityClass): number {
    return this.byClass.get(name) ?? 0;
  }

  /** How many active calls are of a class for which `counts` says yes. */
  countWhere(counts: (name: PriorityClass) => boolean): number {
    let total = 0;
    for (const [name, count] of this.byClass) if (counts(name)) total += count;
    return total;
  }

  list(): QueueEntry[] {
    return [...this.entries];
  }
}

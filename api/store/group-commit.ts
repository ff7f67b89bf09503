/**
 * Group commit: the writes that arrive within one event-loop turn go to the database in one
 * transaction, so they share one commit (one set of WAL frames, one lock round) instead of paying
 * for one each. Under load many chats finish in the same turn, and the commit, not the inserts, is
 * most of an embedded store's cost per chat. Each write still succeeds or fails alone: when the
 * shared transaction fails (one write's unknown conversation or duplicate id rolls all of it back),
 * every write of the batch is replayed in its own transaction, so only the faulty one rejects.
 *
 * A write resolves only after its transaction committed; what a caller awaited is on disk (as far
 * as the database's synchronous setting promises).
 */

export interface GroupCommitOptions<Job, Result> {
  /** Writes every job in one transaction; throws, having rolled all of it back, if any fails. */
  writeAll(jobs: Job[]): Result[];
  /** Writes one job in its own transaction. */
  writeOne(job: Job): Result;
  /** Schedules a flush after the current turn's callbacks: setImmediate unless a test drives it. */
  defer?: (flush: () => void) => void;
  /** Jobs per transaction at most, so one flush never holds the event loop for long. */
  maxBatch?: number;
}

interface Pending<Job, Result> {
  job: Job;
  resolve: (result: Result) => void;
  reject: (error: unknown) => void;
}

const DEFAULT_MAX_BATCH = 200;

export class GroupCommit<Job, Result> {
  private pending: Array<Pending<Job, Result>> = [];
  private readonly defer: (flush: () => void) => void;
  private readonly maxBatch: number;

  constructor(private readonly options: GroupCommitOptions<Job, Result>) {
    this.defer = options.defer ?? ((flush) => setImmediate(flush));
    this.maxBatch = Math.max(1, options.maxBatch ?? DEFAULT_MAX_BATCH);
  }

  /** Jobs waiting for the next flush. */
  get size(): number {
    return this.pending.length;
  }

  submit(job: Job): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      this.pending.push({ job, resolve, reject });
      if (this.pending.length === 1) this.defer(() => this.flush());
    });
  }

  /** Writes everything submitted so far, now (close() calls it before the database goes away). */
  flush(): void {
    const pending = this.pending;
    if (pending.length === 0) return;
    this.pending = [];
    for (let start = 0; start < pending.length; start += this.maxBatch) {
      this.write(pending.slice(start, start + this.maxBatch));
    }
  }

  private write(batch: Array<Pending<Job, Result>>): void {
    if (batch.length > 1) {
      let results: Result[] | undefined;
      try {
        results = this.options.writeAll(batch.map((entry) => entry.job));
      } catch {
        // Rolled back as a whole: each job again alone, below, so only the faulty one fails.
      }
      if (results) {
        batch.forEach((entry, index) => entry.resolve(results[index]));
        return;
      }
    }
    for (const entry of batch) {
      try {
        entry.resolve(this.options.writeOne(entry.job));
      } catch (error) {
        entry.reject(error);
      }
    }
  }
}

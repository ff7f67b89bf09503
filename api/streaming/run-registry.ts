import type { Clock, TimerHandle } from '../clock';
import { Run } from './run';
import type { RunEvent } from './run-events';
import type { RunEventLog } from './run-event-log';

/**
 * The runs this process knows: live ones, and finished ones kept replayable for a retention time.
 */
export class RunRegistry {
  private readonly runs = new Map<string, Run>();
  private readonly expiry = new Map<string, TimerHandle>();
  private readonly finishListeners = new Set<(run: Run, terminal: RunEvent) => void>();

  constructor(
    private readonly options: {
      clock: Clock;
      retentionMs: number;
      maxEventsPerRun: number;
      /** Where runs' events are also written, for resume on other instances (REDIS_URL). */
      eventLog?: RunEventLog;
    },
  ) {}

  /**
   * `replayable: false` (a JSON chat, whose client never learns the run id) forgets the run as soon
   * as it finishes: keeping its log for the retention time served nobody and grew the heap that
   * every garbage collection walks (cpu benchmark, docs/BENCHMARKS.md).
   */
  create(conversationId: string, userId: string, options: { replayable?: boolean } = {}): Run {
    const run = new Run(conversationId, userId, this.options.maxEventsPerRun);
    this.runs.set(run.id, run);
    if (options.replayable === false) {
      void run.finished.then((terminal) => {
        for (const listener of this.finishListeners) listener(run, terminal);
        this.runs.delete(run.id);
      });
      return run;
    }
    this.options.eventLog?.record(run);
    void run.finished.then((terminal) => {
      for (const listener of this.finishListeners) listener(run, terminal);
      const timer = this.options.clock.setTimeout(() => {
        this.runs.delete(run.id);
        this.expiry.delete(run.id);
      }, this.options.retentionMs);
      this.expiry.set(run.id, timer);
    });
    return run;
  }

  /** Calls `listener` with each run's terminal event (metrics count chat outcomes this way). */
  onFinished(listener: (run: Run, terminal: RunEvent) => void): () => void {
    this.finishListeners.add(listener);
    return () => this.finishListeners.delete(listener);
  }

  /** Forgets a run that was created but refused before anything happened in it. */
  discard(runId: string): void {
    this.runs.delete(runId);
  }

  get(runId: string): Run | undefined {
    return this.runs.get(runId);
  }

  /** Runs not yet finished. */
  active(): Run[] {
    return [...this.runs.values()].filter((run) => !run.isFinished);
  }

  size(): number {
    return this.runs.size;
  }

  clear(): void {
    for (const timer of this.expiry.values()) this.options.clock.clearTimeout(timer);
    this.expiry.clear();
    this.runs.clear();
  }
}

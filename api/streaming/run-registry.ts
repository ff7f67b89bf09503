import type { Clock, TimerHandle } from '../clock';
import { Run } from './run';
import type { RunEvent } from './run-events';
import type { RunEventLog } from './run-event-log';

/**
 * The runs this process knows: live ones, and finished ones kept replayable for a retention time.
 */
export class RunRegistry {
  private readonly runs = new Map<string, Run>();
  /**
   * Finished runs in the order they finished, and so in the order they expire (one retention time
   * for all): one timer for the oldest, not one per run (10,000 released streams held 10,000 timers
   * and their closures for the 5-minute retention, sse-capacity benchmark).
   */
  private readonly expiring: Array<{ runId: string; at: number }> = [];
  private expiringHead = 0;
  private expiryTimer?: TimerHandle;
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
    this.track(run);
    return run;
  }

  /**
   * A run another instance started and this one adopted (durable chats): same id, the events
   * already written, new ones continuing their ids in the shared log.
   */
  adopt(
    adopted: { id: string; conversationId: string; userId: string; epoch: number },
    events: readonly RunEvent[],
  ): Run {
    const run = new Run(adopted.conversationId, adopted.userId, this.options.maxEventsPerRun, {
      id: adopted.id,
      events,
    });
    run.epoch = adopted.epoch;
    this.runs.set(run.id, run);
    this.track(run);
    return run;
  }

  private track(run: Run): void {
    this.options.eventLog?.record(run);
    void run.finished.then((terminal) => {
      // Handed over: the run goes on elsewhere; a reader here is served from the shared log.
      if (run.handedOver) {
        if (this.runs.get(run.id) === run) this.runs.delete(run.id);
        return;
      }
      for (const listener of this.finishListeners) listener(run, terminal);
      this.expiring.push({ runId: run.id, at: this.options.clock.now() + this.options.retentionMs });
      this.armExpiry();
    });
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
    if (this.expiryTimer) this.options.clock.clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    this.expiring.length = 0;
    this.expiringHead = 0;
    this.runs.clear();
  }

  private armExpiry(): void {
    if (this.expiryTimer || this.expiringHead >= this.expiring.length) return;
    const delayMs = this.expiring[this.expiringHead].at - this.options.clock.now();
    this.expiryTimer = this.options.clock.setTimeout(this.expire, delayMs);
  }

  private readonly expire = (): void => {
    this.expiryTimer = undefined;
    const now = this.options.clock.now();
    while (this.expiringHead < this.expiring.length && this.expiring[this.expiringHead].at <= now) {
      this.runs.delete(this.expiring[this.expiringHead].runId);
      this.expiringHead++;
    }
    // Drop the expired head now and then rather than shifting the array once per run.
    if (this.expiringHead > 1024 && this.expiringHead * 2 > this.expiring.length) {
      this.expiring.splice(0, this.expiringHead);
      this.expiringHead = 0;
    }
    this.armExpiry();
  };
}

import { wallClock, type Clock, type TimerHandle } from '../clock';
import type { Logger } from '../logger';
import type { Store } from './store';

const DAY_MS = 86_400_000;
/** Sweeps hourly: retention is counted in days, so an hour late is never noticed. */
export const RETENTION_SWEEP_INTERVAL_MS = 3_600_000;

export interface RetentionSweeperOptions {
  store: Store;
  /** Conversations not updated for this many days go; 0 turns the sweeper off. */
  ttlDays: number;
  /** Wall time: stored timestamps are wall time (default wallClock). */
  clock?: Clock;
  logger?: Logger;
  intervalMs?: number;
}

/**
 * Retention of stored conversations (CONVERSATION_TTL_DAYS; the brief's "regularly clean up expired
 * sessions"): once soon after start, then every interval, asks the store to purge what expired.
 * The same for both adapters, because the purge itself is a Store operation.
 */
export class RetentionSweeper {
  private readonly clock: Clock;
  private readonly intervalMs: number;
  private timer?: TimerHandle;
  private running?: Promise<number>;
  private stopped = false;

  constructor(private readonly options: RetentionSweeperOptions) {
    this.clock = options.clock ?? wallClock;
    this.intervalMs = options.intervalMs ?? RETENTION_SWEEP_INTERVAL_MS;
  }

  start(): void {
    if (this.options.ttlDays <= 0 || this.stopped) return;
    // Not during start-up itself: the first sweep waits for the server to be listening.
    this.schedule(1000);
  }

  /** One sweep now; resolves with the number of conversations purged. */
  sweep(): Promise<number> {
    this.running ??= (async () => {
      const updatedBefore = new Date(this.clock.now() - this.options.ttlDays * DAY_MS).toISOString();
      try {
        const purged = await this.options.store.purgeConversations({ updatedBefore });
        if (purged > 0) this.options.logger?.info({ purged, updatedBefore }, 'expired conversations purged');
        return purged;
      } catch (error) {
        // The next sweep tries again; a failing store is reported by readiness, not here.
        this.options.logger?.warn({ err: error }, 'retention sweep failed');
        return 0;
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  /** Stops the timer and waits for a sweep in progress (before the store closes). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private schedule(delayMs: number): void {
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      void this.sweep().then(() => {
        if (!this.stopped) this.schedule(this.intervalMs);
      });
    }, delayMs);
  }
}

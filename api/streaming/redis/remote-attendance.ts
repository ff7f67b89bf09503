import type { Redis } from 'ioredis';
import type { Clock, TimerHandle } from '../../clock';
import type { Logger } from '../../logger';
import type { RunRegistry } from '../run-registry';
import type { Run } from '../run';
import type { RunAttendance } from '../sse-limiter';
import { attendanceChannel, decodeAttendance } from './attendance-message';

export interface RemoteAttendanceOptions {
  /** A connection of its own: a subscribed connection can do nothing else. */
  subscriber: Redis;
  keyPrefix: string;
  instanceId: string;
  runs: RunRegistry;
  attendance: RunAttendance;
  clock: Clock;
  logger: Logger;
  /** A follower not heard from for this long has left (killed, say), ms (default 7000: three beats and a half). */
  staleAfterMs?: number;
}

interface Followed {
  run: Run;
  followers: Map<string, number>;
  /** The stand-in listener that keeps the run attended while someone follows it elsewhere. */
  unsubscribe: () => void;
}

/**
 * The owner's side of cross-instance attendance: followers on other instances say `attach` (and
 * repeat it every beat) on this instance's channel. While a run has one, it holds a stand-in
 * listener on the run and tells the SSE attendance the run is followed — so the resume grace and
 * the held LLM calls behave exactly as for a local listener; when the last one leaves (or goes
 * silent), the stand-in leaves and the grace starts.
 */
export class RemoteAttendance {
  private readonly followed = new Map<string, Followed>();
  private readonly staleAfterMs: number;
  private sweepTimer?: TimerHandle;
  private closed = false;

  constructor(private readonly options: RemoteAttendanceOptions) {
    this.staleAfterMs = options.staleAfterMs ?? 7000;
  }

  async start(): Promise<void> {
    const { subscriber, keyPrefix, instanceId } = this.options;
    subscriber.on('message', (_channel: string, text: string) => this.onMessage(text));
    await subscriber.subscribe(attendanceChannel(keyPrefix, instanceId));
  }

  /** Runs followed from another instance right now (for tests and status). */
  size(): number {
    return this.followed.size;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.sweepTimer) this.options.clock.clearTimeout(this.sweepTimer);
    for (const entry of this.followed.values()) entry.unsubscribe();
    this.followed.clear();
    this.options.subscriber.disconnect();
  }

  private onMessage(text: string): void {
    const message = decodeAttendance(text);
    if (!message || this.closed) return;
    const now = this.options.clock.now();
    const entry = this.followed.get(message.runId);
    if (message.kind === 'detach') {
      if (entry?.followers.delete(message.followerId) && entry.followers.size === 0) this.leave(entry);
      return;
    }
    if (entry) {
      entry.followers.set(message.followerId, now);
      return;
    }
    const run = this.options.runs.get(message.runId);
    if (!run || run.isFinished) return;
    // Subscribed after every event it could replay: the stand-in receives nothing, it only counts.
    const unsubscribe = run.subscribe(() => undefined, Number.MAX_SAFE_INTEGER);
    const created: Followed = { run, followers: new Map([[message.followerId, now]]), unsubscribe };
    this.followed.set(run.id, created);
    void run.finished.then(() => {
      if (this.followed.get(run.id) === created) {
        this.followed.delete(run.id);
        created.unsubscribe();
      }
    });
    this.options.attendance.attach(run, { resume: true });
    this.options.logger.info({ runId: run.id }, 'run followed from another instance');
    this.armSweep();
  }

  private leave(entry: Followed): void {
    this.followed.delete(entry.run.id);
    entry.unsubscribe();
    this.options.attendance.detach(entry.run);
  }

  private armSweep(): void {
    if (this.sweepTimer || this.closed) return;
    this.sweepTimer = this.options.clock.setTimeout(
      () => {
        this.sweepTimer = undefined;
        const cutoff = this.options.clock.now() - this.staleAfterMs;
        for (const entry of [...this.followed.values()]) {
          for (const [followerId, seenAt] of entry.followers) {
            if (seenAt < cutoff) entry.followers.delete(followerId);
          }
          if (entry.followers.size === 0) this.leave(entry);
        }
        if (this.followed.size > 0) this.armSweep();
      },
      Math.ceil(this.staleAfterMs / 3),
    );
  }
}

import type { Clock } from '../clock';

/**
 * Spreads the starts of calls ranked below every agent's class (the gateway's batch callers, by
 * default) evenly over the minute: such a call starts no sooner than 60 s / RPM after the last
 * start of any call. Without it a flood would spend the rolling window's whole allowance in a
 * burst whenever it opens, and a chat's next call would find no start left until the window
 * moved on — seconds later, whatever its priority. Paced, a start frees up every 60/RPM seconds
 * and the queue gives it to the highest class waiting: a chat's call waits a fraction of a second.
 * Calls of the agents' classes are not paced (their bursts are the chats' own).
 */
export class StartPacer {
  private lastStartAt = -Infinity;

  constructor(private readonly clock: Pick<Clock, 'now'>) {}

  /** Clock time from which a paced call may start, for the effective RPM. */
  nextPacedStartAt(rpm: number): number {
    return this.lastStartAt + 60_000 / Math.max(1, rpm);
  }

  /** A call (of any class) started now. */
  started(): void {
    this.lastStartAt = this.clock.now();
  }
}

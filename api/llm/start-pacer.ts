import type { Clock } from '../clock';
import type { LimiterSnapshot } from './limiter';

/** How far back the agents' own starts are counted for their reserve (the rate window's 10 s sub-window). */
const RESERVE_WINDOW_MS = 10_000;

/**
 * Keeps calls ranked below every agent's class (the gateway's batch callers, by default) from
 * taking the starts a chat's next call needs:
 *
 * - **Paced:** such a call starts no sooner than 60 s / RPM after the last start of any call.
 *   Without it a flood would spend the rolling window's whole allowance in a burst whenever it
 *   opens, and a chat's call would find no start left until the window moved on, seconds later.
 * - **A reserve for the agents:** it starts only while the rolling minute keeps as many starts
 *   free as the agents' calls took in the last 10 s. A chat's call then finds a start at once
 *   instead of waiting for the window to move; when no chat runs, the reserve is 0 and the flood
 *   may use the whole quota.
 *
 * Calls of the agents' classes are neither paced nor held (their bursts are the chats' own).
 */
export class StartPacer {
  private lastStartAt = -Infinity;
  /** Start times of calls of the agents' classes within RESERVE_WINDOW_MS, oldest first. */
  private readonly agentStarts: number[] = [];

  constructor(private readonly clock: Pick<Clock, 'now'>) {}

  /** Clock time from which a paced call may try to start (≤ now: it may try now). */
  pacedStartAt(limiter: Pick<LimiterSnapshot, 'startsLastMinute' | 'limits'>): number {
    const now = this.clock.now();
    const gapMs = 60_000 / Math.max(1, limiter.limits.rpm);
    const pacedAt = this.lastStartAt + gapMs;
    if (pacedAt > now) return pacedAt;
    while (this.agentStarts.length > 0 && this.agentStarts[0] + RESERVE_WINDOW_MS <= now)
      this.agentStarts.shift();
    // The window frees a start about every gap: look again then (one timer, not a loop).
    const reserve = this.agentStarts.length;
    return limiter.startsLastMinute + reserve >= limiter.limits.rpm && reserve > 0 ? now + gapMs : now;
  }

  /** A call started now; `agentClass`: one of the agents' classes (or ranked among them). */
  started(agentClass: boolean): void {
    const now = this.clock.now();
    this.lastStartAt = now;
    if (agentClass) this.agentStarts.push(now);
  }
}

import type { Clock, TimerHandle } from '../clock';

/**
 * One Clock timer for the earliest moment dispatch should run again: a rate window opening, a
 * paced start, a limiter to ask again. Asking for a later moment while an earlier one is armed
 * changes nothing, so a blocked queue holds exactly one timer however often it is told to wait.
 */
export class WakeTimer {
  private timer?: TimerHandle;
  private at = Infinity;

  constructor(
    private readonly clock: Clock,
    private readonly onWake: () => void,
  ) {}

  /** Runs `onWake` at `at` (epoch ms), unless an earlier wake-up is already armed. */
  armAt(at: number): void {
    if (this.timer && this.at <= at) return;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.at = at;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.at = Infinity;
      this.onWake();
    }, at - this.clock.now());
  }
}

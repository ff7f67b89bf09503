import type { Clock } from '../clock';

/**
 * A bound on how much of something one event-loop turn does: `take()` is true while fewer than
 * `perTurn` were taken this turn. The count starts again in the check phase (the clock's `defer`) after
 * the turn's first take, so work left over waits for the next turn, with I/O and timers in
 * between. The SSE line bounds its cancellations, its places told and its passes over the front
 * this way (sse-capacity benchmark: 10,000 clients leaving at once).
 */
export class TurnBudget {
  private used = 0;

  constructor(
    private readonly perTurn: number,
    private readonly clock: Pick<Clock, 'defer'>,
  ) {}

  take(): boolean {
    if (this.used >= this.perTurn) return false;
    if (this.used++ === 0) this.clock.defer(this.reset);
    return true;
  }

  private readonly reset = (): void => {
    this.used = 0;
  };
}

import type { EmitEvent, RunEventMap, RunEventName } from '../streaming/run-events';

/**
 * Events of a speculative agent turn, held back from the run until the turn is confirmed: then
 * they are sent in order and later ones pass straight through; a withdrawn turn's events are
 * dropped, so the user never sees text that is taken back.
 */
export class HeldEvents {
  private held: Array<{ event: RunEventName; data: unknown }> | undefined = [];
  private dropped = false;

  constructor(private readonly target: EmitEvent) {}

  readonly emit: EmitEvent = <K extends RunEventName>(event: K, data: RunEventMap[K]) => {
    if (this.dropped) return;
    if (this.held) this.held.push({ event, data });
    else this.target(event, data);
  };

  /** Sends what was held, in order; from now on events go straight to the run. */
  release(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const { event, data } of held) this.target(event, data as RunEventMap[typeof event]);
  }

  /** Drops what was held and everything that comes later. */
  discard(): void {
    this.held = undefined;
    this.dropped = true;
  }
}

import type { BreakerState } from '../provider-breaker';
import type { ProviderRoom } from '../provider-room';

/** What admission asks of the provider side (api/llm/admission.ts): ProviderRoom, or several. */
export interface AdmissionRoom {
  hasRoom(): boolean;
  onRoom(listener: () => void): void;
  chatStarted(runId: string): void;
  chatEnded(runId: string): void;
}

/** One endpoint's room and whether its breaker is open. */
export interface EndpointRoom {
  room: ProviderRoom;
  breaker(): BreakerState;
}

/**
 * Admission over several endpoints (docs/ARCHITECTURE.md, "Admission"): each endpoint's request
 * queue reports to its own ProviderRoom, and a chat may start when an endpoint of its first agent's
 * route (`first`, in fallback order) has room as measured right now — the same closed loop, per
 * endpoint. An endpoint whose breaker is open takes no chat; when every one of them is open the
 * chat starts anyway, to fail at once with its coded error instead of waiting in the line for
 * nothing. Every room hears every chat start and end: any of them may serve a later agent's call.
 */
export class RouteRoom implements AdmissionRoom {
  constructor(
    private readonly all: readonly ProviderRoom[],
    private readonly first: readonly EndpointRoom[],
  ) {}

  hasRoom(): boolean {
    const usable = this.first.filter((endpoint) => endpoint.breaker() !== 'open');
    if (usable.length === 0) return true;
    return usable.some((endpoint) => endpoint.room.hasRoom());
  }

  onRoom(listener: () => void): void {
    for (const room of this.all) room.onRoom(listener);
  }

  chatStarted(runId: string): void {
    for (const room of this.all) room.chatStarted(runId);
  }

  chatEnded(runId: string): void {
    for (const room of this.all) room.chatEnded(runId);
  }
}

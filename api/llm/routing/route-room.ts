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
 * queue reports to its own ProviderRoom. A chat may start when an endpoint of its first agent's
 * route (`first`, in fallback order) has room as measured right now — the one-endpoint rule — and
 * no call waits for a slot at any other endpoint either: the chat's later agents will call those,
 * and a queue there means the provider side absorbs no more chats now. Endpoints whose breaker is
 * open are left out (their calls go elsewhere); when every endpoint of the first route is open the
 * chat starts anyway, to fail at once with its coded error instead of waiting in the line for
 * nothing. Every room hears every chat start and end: any of them may serve a later agent's call.
 */
export class RouteRoom implements AdmissionRoom {
  constructor(
    private readonly all: readonly EndpointRoom[],
    private readonly first: readonly EndpointRoom[],
  ) {}

  hasRoom(): boolean {
    const usable = (endpoints: readonly EndpointRoom[]) =>
      endpoints.filter((endpoint) => endpoint.breaker() !== 'open');
    const first = usable(this.first);
    if (first.length === 0) return true;
    if (usable(this.all).some((endpoint) => endpoint.room.waitingCalls > 0)) return false;
    return first.some((endpoint) => endpoint.room.hasRoom());
  }

  onRoom(listener: () => void): void {
    for (const endpoint of this.all) endpoint.room.onRoom(listener);
  }

  chatStarted(runId: string): void {
    for (const endpoint of this.all) endpoint.room.chatStarted(runId);
  }

  chatEnded(runId: string): void {
    for (const endpoint of this.all) endpoint.room.chatEnded(runId);
  }
}

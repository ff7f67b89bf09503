import type { LlmGateway, RunHolds } from './llm-gateway';
import type { LlmScheduler } from './llm-scheduler';
import type { SchedulerStatus } from './llm-scheduler-options';
import type { BreakerState } from './provider-breaker';
import type { QueueItem } from './request-queue';
import type { EndpointStatus } from './routing/endpoint-status';

export type ProviderAvailability = ReturnType<LlmScheduler['providerAvailability']>;

/**
 * What the rest of the app sees of the LLM side: calls (LlmGateway), run holds, the operator's
 * controls and the status. The routing gateway (routing/routing-gateway.ts) implements it over one
 * scheduler per endpoint; its status is the endpoints' sum, with each endpoint in `endpoints()`.
 */
export interface LlmControl extends LlmGateway, RunHolds {
  status(): SchedulerStatus;
  /** Each endpoint's own figures (name, model, quota, breaker, fallbacks). */
  endpoints(): EndpointStatus[];
  /** This instance's own calls in flight (status() shows the shared quota's, with REDIS_URL). */
  activeCount(): number;
  items(): Array<QueueItem & { endpoint?: string }>;
  pause(options?: { refuseNewChats?: boolean }): void;
  resume(): void;
  clear(): number;
  readonly isPaused: boolean;
  /** An operator paused the queue and chose to refuse new chats meanwhile (admission asks). */
  readonly isRefusingNewChats: boolean;
  breakerState(): BreakerState;
  /** Why the provider cannot be used, when it cannot (health reports it beside the breaker's state). */
  providerAvailability(): ProviderAvailability;
  isRateLimited(): boolean;
  /** Re-runs every endpoint's dispatch (the shared limiter's mode changed, a slot was freed elsewhere). */
  wake(): void;
  close(): Promise<void>;
}

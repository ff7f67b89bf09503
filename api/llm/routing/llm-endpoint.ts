import type { EndpointConfig } from '../../../config/endpoints-file';
import type { LlmScheduler } from '../llm-scheduler';
import type { Provider } from '../provider';
import type { ProviderRoom } from '../provider-room';

/**
 * One provider endpoint with its own call path: its scheduler (queue, limiter, AIMD, breaker,
 * Retry-After hold), the provider it calls and its admission room. Built by the composition root
 * (routing/create-endpoints.ts), one per entry of LLM_ENDPOINTS_FILE (or the single `default`).
 */
export interface LlmEndpoint {
  readonly config: EndpointConfig;
  readonly provider: Provider;
  readonly scheduler: LlmScheduler;
  /** What waits and what is free at this endpoint, for admission (provider-room.ts). */
  readonly room: ProviderRoom;
}

import type { Router } from 'express';
import type { Config } from '../../config';
import type { ChatService } from '../agents/chat-service';
import type { Clock } from '../clock';
import type { Logger } from '../logger';
import type { LlmGateway } from '../llm/llm-gateway';
import type { LlmScheduler } from '../llm/llm-scheduler';
import type { Provider } from '../llm/provider';
import type { RoutingGateway } from '../llm/routing/routing-gateway';
import type { SseStreaming } from '../streaming/sse-streaming';
import { CallerLimiter } from './caller-limits';
import { endpointModels, singleModel } from './gateway-models';
import { gatewayRouter } from './gateway-router';

/** Retry-After bounds for a call refused for lack of room, ms. */
const MIN_RETRY_AFTER_MS = 1000;
const MAX_RETRY_AFTER_MS = 30_000;

/**
 * Builds the OpenAI-compatible gateway (/v1) from parts the composition root already made: the
 * agents' LlmGateway (one cache, one scheduler, one quota), the chat service and chat line (for
 * the troupe model), the routing gateway's endpoints (their models), and the caller limits kept here.
 */
export function createGateway(deps: {
  config: Config;
  logger: Logger;
  clock: Clock;
  llm: LlmGateway;
  chat: ChatService;
  sse: SseStreaming;
  scheduler: Pick<LlmScheduler, 'status'>;
  provider: Pick<Provider, 'name'>;
  /** The endpoints and the models they serve (a call's model picks its endpoints). */
  router: Pick<RoutingGateway, 'list' | 'modelRoute'>;
}): Router {
  const { config } = deps;
  // With an endpoints file, every endpoint's model; without, the provider's configured model (the
  // simulated provider answers to its own name) on the default route, as before endpoints existed.
  const models = config.llm.endpointsFile
    ? endpointModels(deps.router)
    : singleModel(config.llm.model ?? deps.provider.name);
  return gatewayRouter({
    config,
    logger: deps.logger,
    llm: deps.llm,
    limits: new CallerLimiter(deps.clock),
    // What the queue's calls waited lately (p95): a fair guess of when room comes back.
    retryAfterMs: () =>
      Math.min(MAX_RETRY_AFTER_MS, Math.max(MIN_RETRY_AFTER_MS, deps.scheduler.status().p95WaitTime)),
    chat: deps.chat,
    line: deps.sse.limiter,
    heartbeat: deps.sse.heartbeat,
    models,
  });
}

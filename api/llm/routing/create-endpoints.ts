import type { Config } from '../../../config';
import type { EndpointConfig } from '../../../config/endpoints-file';
import type { Clock } from '../../clock';
import type { Logger } from '../../logger';
import type { AimdPolicy } from '../aimd';
import { createLlmScheduler } from '../create-llm-scheduler';
import type { Limiter } from '../limiter';
import type { Provider } from '../provider';
import { ProviderRoom } from '../provider-room';
import type { RunLedger } from '../run-ledger';
import type { SchedulerMetrics } from '../scheduler-events';
import type { LlmEndpoint } from './llm-endpoint';

/** Where an endpoint's quota lives when instances share it (REDIS_URL): create-cluster.ts. */
export interface SharedEndpointLimits {
  /** The quota of the LLM_* settings (the single `default` endpoint), as before endpoints existed. */
  limiter: Limiter;
  aimd: AimdPolicy;
  /** One more endpoint's shared quota, under its own key prefix. */
  endpointLimiter(endpoint: EndpointConfig): Promise<{ limiter: Limiter; aimd: AimdPolicy }>;
}

export interface CreateEndpointsOptions {
  config: Config;
  clock: Clock;
  logger: Logger;
  metrics?: SchedulerMetrics;
  /** The provider of each endpoint (the composition root builds them, or a test hands its own in). */
  provider: (endpoint: EndpointConfig) => Provider;
  shared?: SharedEndpointLimits;
  /** One for every endpoint: what each chat's calls do, wherever they go (admission reads it). */
  ledger?: RunLedger;
  /** How many instances share each endpoint's quota (the cluster's registry); 1 alone. */
  instances?: () => number;
}

/**
 * Part of the composition root: one call path per endpoint — its own limiter (in memory, or shared
 * in Redis under its own prefix), AIMD, breaker, Retry-After hold, queue and admission room — from
 * the endpoints in the config. No endpoint shares a part with another, so none can spend another's
 * quota. Without LLM_ENDPOINTS_FILE this is the single `default` endpoint, built as before.
 */
export async function createEndpoints(options: CreateEndpointsOptions): Promise<LlmEndpoint[]> {
  const { config, clock, shared } = options;
  const several = config.llm.endpoints.length > 1;
  const endpoints: LlmEndpoint[] = [];
  for (const endpoint of config.llm.endpoints) {
    const room = new ProviderRoom(endpoint.maxConcurrent, clock, options.instances);
    const limiter = !shared
      ? undefined
      : config.llm.endpointsFile
        ? await shared.endpointLimiter(endpoint)
        : { limiter: shared.limiter, aimd: shared.aimd };
    const provider = options.provider(endpoint);
    const scheduler = createLlmScheduler({
      config: {
        llm: {
          ...config.llm,
          model: endpoint.model,
          maxConcurrent: endpoint.maxConcurrent,
          maxRpm: endpoint.maxRpm,
          maxTpm: endpoint.maxTpm,
        },
      },
      provider,
      clock,
      logger: several ? options.logger.child({ endpoint: endpoint.name }) : options.logger,
      metrics: options.metrics,
      room,
      ledger: options.ledger,
      endpointName: endpoint.name,
      ...(limiter ? { limiter } : {}),
    });
    endpoints.push({ config: endpoint, provider, scheduler, room });
  }
  return endpoints;
}

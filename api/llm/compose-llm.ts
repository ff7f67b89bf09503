import type { Config } from '../../config';
import type { Clock } from '../clock';
import type { Cluster } from '../cluster/create-cluster';
import type { Logger } from '../logger';
import type { TroupeMetrics } from '../metrics/troupe-metrics';
import { CachingGateway } from './cache/caching-gateway';
import { createResponseCache } from './cache/create-response-cache';
import type { LlmControl } from './llm-control';
import type { LlmGateway } from './llm-gateway';
import type { Provider } from './provider';
import type { RunLedger } from './run-ledger';
import { createEndpointProvider, createProvider } from './providers/create-provider';
import { createEndpoints } from './routing/create-endpoints';
import { RouteRoom, type AdmissionRoom } from './routing/route-room';
import { RoutingGateway } from './routing/routing-gateway';

/** What tests may put in place of the providers (the composition root's overrides). */
export interface LlmOverrides {
  /** The provider of the first endpoint (the single `default` one without LLM_ENDPOINTS_FILE). */
  provider?: Provider;
  /** Providers by endpoint name. */
  providers?: Record<string, Provider>;
}

/**
 * The LLM side of the composition root (api/troupe.ts): one call path per endpoint, the routing
 * gateway in front, admission's room over the Host's route, and the response cache in front of all
 * (docs/ARCHITECTURE.md, "The request's path"). Wiring only: every part is built here once and
 * handed in.
 */
export async function composeLlm(deps: {
  config: Config;
  clock: Clock;
  logger: Logger;
  metrics: TroupeMetrics;
  cluster: Cluster | undefined;
  overrides: LlmOverrides;
  /** What each chat's calls do at every endpoint (admission's late starts read it). */
  ledger: RunLedger;
}) {
  const { config, clock, logger, metrics, cluster, overrides, ledger } = deps;
  // One call path per endpoint (its own quota, AIMD, breaker, hold, queue and admission room),
  // and the routing gateway in front: each agent's calls go to its route's endpoints in order.
  const endpoints = await createEndpoints({
    config,
    clock,
    logger,
    metrics,
    ledger,
    provider: (endpoint) =>
      overrides.providers?.[endpoint.name] ??
      (endpoint === config.llm.endpoints[0] ? overrides.provider : undefined) ??
      (config.llm.endpointsFile
        ? createEndpointProvider(endpoint, config, clock)
        : createProvider(config, clock)),
    ...(cluster ? { shared: cluster, instances: () => cluster.registry.count() } : {}),
  });
  const router = new RoutingGateway({
    endpoints,
    routes: config.llm.routes,
    clock,
    callTimeoutMs: config.llm.timeoutMs,
    logger,
  });
  const scheduler: LlmControl = router;
  const provider = endpoints[0].provider;
  // Admission's closed loop: each endpoint's queue reports what waits and what is free; the chat
  // line starts a waiting chat only while the first agent's route has room (api/llm/admission.ts).
  const endpointRoom = (endpoint: (typeof endpoints)[number]) => ({
    room: endpoint.room,
    breaker: () => endpoint.scheduler.breakerState(),
  });
  const room: AdmissionRoom =
    endpoints.length === 1
      ? endpoints[0].room
      : new RouteRoom(endpoints.map(endpointRoom), router.route('host').map(endpointRoom));
  const cacheBackend = config.llmCache.enabled
    ? createResponseCache(config, { clock, logger, client: cluster?.redis })
    : undefined;
  await cacheBackend?.open?.();
  const responseCache = cacheBackend
    ? new CachingGateway({
        inner: scheduler,
        cache: cacheBackend,
        // The model the call goes to (its route's first endpoint).
        scope: (meta) => router.cacheScope(meta),
        ttlSeconds: config.llmCache.ttlSeconds,
        clock,
        logger,
        metrics,
      })
    : undefined;
  const llm: LlmGateway = responseCache ?? scheduler;
  return { endpoints, router, scheduler, provider, room, responseCache, llm };
}

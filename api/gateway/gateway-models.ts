import type { RoutingGateway } from '../llm/routing/routing-gateway';

/** The provider models the /v1 gateway serves, and whether a call's model picks its endpoints. */
export interface GatewayModels {
  /** The ids GET /v1/models lists (besides `troupe`). */
  list(): readonly string[];
  /** May a call name `model`? A listed id, or (with an endpoints file) an endpoint's name. */
  serves(model: string): boolean;
  /**
   * With an endpoints file a call's `model` picks its endpoints (LlmCallMeta.model); without
   * one, every call takes the default route, as the agents' calls do.
   */
  readonly routesByModel: boolean;
}

/** Without an endpoints file: the one configured model (LLM_MODEL, or the simulated model's name). */
export function singleModel(id: string): GatewayModels {
  return { list: () => [id], serves: (model) => model === id, routesByModel: false };
}

/**
 * With an endpoints file: every endpoint's model, once each, in the file's order. An endpoint's
 * name is accepted too (that endpoint alone, no fallback) but not listed, so that a chat UI's
 * model picker shows each model once.
 */
export function endpointModels(router: Pick<RoutingGateway, 'list' | 'modelRoute'>): GatewayModels {
  const ids = [...new Set(router.list().map((endpoint) => endpoint.config.model))];
  return {
    list: () => ids,
    serves: (model) => router.modelRoute(model).length > 0,
    routesByModel: true,
  };
}

import { isAgentName, type AgentName } from '../../agents/agent-name';
import type { PriorityClass } from '../priority-class';
import type { EndpointRoutes } from '../../../config/endpoints-file';
import type { Clock } from '../../clock';
import { AppError, abortReason } from '../../errors';
import type { CacheScope } from '../cache/cache-key';
import type { LlmControl, ProviderAvailability } from '../llm-control';
import type {
  Admission,
  AdmissionRequest,
  LlmCallMeta,
  LlmCallOptions,
  LlmCallOutcome,
} from '../llm-gateway';
import type { SchedulerStatus } from '../llm-scheduler-options';
import type { CompletionRequest } from '../provider';
import type { BreakerState } from '../provider-breaker';
import type { QueueItem } from '../request-queue';
import type { SchedulerLogger } from '../scheduler-events';
import { endpointStatus, type EndpointStatus, type FallbackCounts } from './endpoint-status';
import { isFallbackable } from './fallbackable';
import type { LlmEndpoint } from './llm-endpoint';
import { mergeBreakers, mergeStatuses } from './merged-status';

export interface RoutingGatewayOptions {
  /** Every endpoint, in the file's order (the first is the "default endpoint" of the status). */
  endpoints: readonly LlmEndpoint[];
  routes: EndpointRoutes;
  clock: Clock;
  /** LLM_TIMEOUT: a call's whole budget, fallbacks included. */
  callTimeoutMs: number;
  logger?: SchedulerLogger;
}

/**
 * The routing gateway: a call of agent X goes to the first endpoint of X's route that can take it
 * in time (breaker not open, its estimated wait within the call's time left) and falls back to the
 * next — only before its first token reached anyone — when that endpoint fails in a way another
 * could serve (routing/fallbackable.ts: 429, 5xx, network, a timeout, an open breaker). Each
 * endpoint keeps its own call path (quota, AIMD, breaker, Retry-After hold), so no endpoint's
 * quota is ever exceeded; the call's deadline (LLM_TIMEOUT, the chat's) covers every endpoint it
 * tries. The last endpoint of a route is never skipped: it answers, or fails fast with its code.
 *
 * For the rest of the app it is the LLM side (LlmControl): operator controls reach every endpoint,
 * and the status is their sum, with each endpoint in `endpoints()` (docs/ENDPOINTS.md).
 */
export class RoutingGateway implements LlmControl {
  private readonly byName = new Map<string, LlmEndpoint>();
  private readonly routeOf = new Map<AgentName | 'default', LlmEndpoint[]>();
  private readonly fallbacks = new Map<string, FallbackCounts>();
  /** A model id -> the endpoints serving it (file order); an endpoint's name -> that endpoint. */
  private readonly byModel = new Map<string, LlmEndpoint[]>();

  constructor(private readonly options: RoutingGatewayOptions) {
    if (options.endpoints.length === 0)
      throw new AppError('internal', 'The routing gateway needs an endpoint');
    for (const endpoint of options.endpoints) {
      this.byName.set(endpoint.config.name, endpoint);
      this.fallbacks.set(endpoint.config.name, { left: 0, skipped: 0, servedAsFallback: 0 });
      const serving = this.byModel.get(endpoint.config.model) ?? [];
      this.byModel.set(endpoint.config.model, [...serving, endpoint]);
    }
    // A name is an alias after the models: a model id that equals another endpoint's name wins.
    for (const endpoint of options.endpoints)
      if (!this.byModel.has(endpoint.config.name)) this.byModel.set(endpoint.config.name, [endpoint]);
    for (const [agent, names] of Object.entries(options.routes) as Array<
      [AgentName | 'default', readonly string[]]
    >) {
      this.routeOf.set(
        agent,
        names.map((name) => {
          const endpoint = this.byName.get(name);
          if (!endpoint)
            throw new AppError('internal', `The route of ${agent} names an unknown endpoint "${name}"`);
          return endpoint;
        }),
      );
    }
  }

  /** The endpoints, in order: their names, models and providers (the /v1 gateway maps model names to them). */
  list(): readonly LlmEndpoint[] {
    return this.options.endpoints;
  }

  /**
   * The endpoints an agent's calls go to, in fallback order; a gateway caller's class (interactive,
   * batch) takes the `default` route (unless its call names a model: `modelRoute`).
   */
  route(agent: PriorityClass | 'default'): readonly LlmEndpoint[] {
    if (agent !== 'default' && !isAgentName(agent)) agent = 'default';
    return this.routeOf.get(agent) ?? this.routeOf.get('default')!;
  }

  /**
   * The endpoints a caller who named `model` may get, in fallback order: every endpoint serving
   * that model (file order), or the one endpoint of that name; none when it names neither. A call
   * for model X never falls back to an endpoint of another model.
   */
  modelRoute(model: string): readonly LlmEndpoint[] {
    return this.byModel.get(model) ?? [];
  }

  /**
   * What the response cache keys a call on: the model of its route's first endpoint (an answer
   * another endpoint gave is not stored under it: see `LlmCallOutcome.endpoint`).
   */
  cacheScope(meta: Pick<LlmCallMeta, 'agentType' | 'model'>): CacheScope {
    const first = this.routeFor(meta)[0] ?? this.route(meta.agentType)[0];
    return { provider: first.provider.name, model: first.config.model };
  }

  async complete(
    meta: LlmCallMeta,
    request: CompletionRequest,
    options: LlmCallOptions,
  ): Promise<LlmCallOutcome> {
    if (options.signal.aborted) throw abortReason(options.signal);
    const route = this.routeFor(meta);
    if (route.length === 0)
      throw new AppError('not_found', `No endpoint serves the model \`${meta.model}\``);
    if (route.length === 1) return this.answer(route[0], route[0].scheduler.complete(meta, request, options));
    const { clock } = this.options;
    const deadline = Math.min(
      clock.now() + (meta.timeoutMs ?? this.options.callTimeoutMs),
      meta.chatDeadline ?? Infinity,
    );
    let tokenSeen = false;
    const onDelta = (text: string) => {
      tokenSeen = true;
      options.onDelta?.(text);
    };
    let diverted = false;
    for (let index = 0; index < route.length; index++) {
      const endpoint = route[index];
      const name = endpoint.config.name;
      const leftMs = deadline - clock.now();
      const later = route.slice(index + 1);
      const laterCanTake = later.some((next) => this.canTake(next, leftMs));
      // Passed by: an open breaker while a later endpoint's is not, or a line longer than the
      // call's time left while a later endpoint can start it in time.
      const open = endpoint.scheduler.breakerState() === 'open';
      if (open ? later.some((next) => !this.isOpen(next)) : laterCanTake && !this.canTake(endpoint, leftMs)) {
        this.fallbacks.get(name)!.skipped++;
        diverted = true;
        continue;
      }
      try {
        const outcome = await this.answer(
          endpoint,
          endpoint.scheduler.complete(
            // The call's deadline holds across endpoints: each one gets only the time left.
            { ...meta, timeoutMs: Math.max(1, Math.round(leftMs)), fallbackAvailable: laterCanTake },
            request,
            { signal: options.signal, onDelta },
          ),
        );
        if (diverted) this.fallbacks.get(name)!.servedAsFallback++;
        return outcome;
      } catch (error) {
        const anotherServes = later.some((next) => !this.isOpen(next));
        if (tokenSeen || !anotherServes || options.signal.aborted || !isFallbackable(error)) throw error;
        this.fallbacks.get(name)!.left++;
        diverted = true;
        this.options.logger?.warn(
          { endpoint: name, agent: meta.agentType, error: (error as Error).message },
          'An endpoint failed before the first token; the call falls back to the next on its route',
        );
      }
    }
    // Unreachable: the last endpoint of a route is always tried, and its failure is thrown above.
    throw new AppError('llm_unavailable', 'No endpoint of the route could take the call');
  }

  /** Registers the chat with every endpoint: its calls may reach any of them. */
  async admit(request: AdmissionRequest): Promise<Admission> {
    const admissions = await Promise.all(
      this.options.endpoints.map((endpoint) => endpoint.scheduler.admit(request)),
    );
    return { release: () => admissions.forEach((admission) => admission.release()) };
  }

  hold(runId: string): void {
    for (const endpoint of this.options.endpoints) endpoint.scheduler.hold(runId);
  }

  release(runId: string): void {
    for (const endpoint of this.options.endpoints) endpoint.scheduler.release(runId);
  }

  status(): SchedulerStatus {
    return mergeStatuses(this.options.endpoints.map((endpoint) => endpoint.scheduler.status()));
  }

  endpoints(): EndpointStatus[] {
    return this.options.endpoints.map((endpoint) => {
      const name = endpoint.config.name;
      const routes: EndpointStatus['routes'] = [];
      for (const [agent, route] of this.routeOf) {
        const position = route.indexOf(endpoint);
        if (position >= 0) routes.push({ agent, position: position + 1 });
      }
      return endpointStatus(
        { name, provider: endpoint.config.provider, model: endpoint.config.model, routes },
        endpoint.scheduler.status(),
        endpoint.scheduler.startWaitEstimateMs(),
        this.fallbacks.get(name)!,
      );
    });
  }

  activeCount(): number {
    return this.options.endpoints.reduce(
      (active, endpoint) => active + endpoint.scheduler.queue.activeCount,
      0,
    );
  }

  items(): Array<QueueItem & { endpoint?: string }> {
    if (this.options.endpoints.length === 1) return this.options.endpoints[0].scheduler.items();
    return this.options.endpoints.flatMap((endpoint) =>
      endpoint.scheduler.items().map((item) => ({ ...item, endpoint: endpoint.config.name })),
    );
  }

  pause(options: { refuseNewChats?: boolean } = {}): void {
    for (const endpoint of this.options.endpoints) endpoint.scheduler.pause(options);
  }

  resume(): void {
    for (const endpoint of this.options.endpoints) endpoint.scheduler.resume();
  }

  clear(): number {
    return this.options.endpoints.reduce((cleared, endpoint) => cleared + endpoint.scheduler.clear(), 0);
  }

  get isPaused(): boolean {
    return this.options.endpoints.some((endpoint) => endpoint.scheduler.isPaused);
  }

  get isRefusingNewChats(): boolean {
    return this.options.endpoints.some((endpoint) => endpoint.scheduler.isRefusingNewChats);
  }

  breakerState(): BreakerState {
    return mergeBreakers(this.options.endpoints.map((endpoint) => endpoint.scheduler.breakerState()));
  }

  /**
   * Unusable, or failing now, only when every endpoint is: while one serves, the others' calls fall
   * back to it and no user sees the failure (each endpoint's own state is in `endpoints()`).
   */
  providerAvailability(): ProviderAvailability {
    const each = this.options.endpoints.map((endpoint) => endpoint.scheduler.providerAvailability());
    const unavailable = each.every((one) => one.unavailable) ? each[0].unavailable : undefined;
    const failures = each.flatMap((one) => (one.recentFailure ? [one.recentFailure] : []));
    const recentFailure =
      failures.length === each.length ? failures.reduce((a, b) => (a.ageMs <= b.ageMs ? a : b)) : undefined;
    return { ...(unavailable ? { unavailable } : {}), ...(recentFailure ? { recentFailure } : {}) };
  }

  /** Rate limited when every endpoint is (one endpoint's 429s are answered by the others). */
  isRateLimited(): boolean {
    return this.options.endpoints.every((endpoint) => endpoint.scheduler.isRateLimited());
  }

  wake(): void {
    for (const endpoint of this.options.endpoints) endpoint.scheduler.queue.wake();
  }

  async close(): Promise<void> {
    await Promise.all(this.options.endpoints.map((endpoint) => endpoint.scheduler.close()));
  }

  /** A call's route: the endpoints of the model it named, or its class's route. */
  private routeFor(meta: Pick<LlmCallMeta, 'agentType' | 'model'>): readonly LlmEndpoint[] {
    return meta.model === undefined ? this.route(meta.agentType) : this.modelRoute(meta.model);
  }

  /** Can `endpoint` start a call within `leftMs`? Not while its breaker is open or its line is too long. */
  private canTake(endpoint: LlmEndpoint, leftMs: number): boolean {
    if (this.isOpen(endpoint)) return false;
    return endpoint.scheduler.startWaitEstimateMs() < leftMs;
  }

  private isOpen(endpoint: LlmEndpoint): boolean {
    return endpoint.scheduler.breakerState() === 'open';
  }

  /** The outcome, tagged with the endpoint that gave it. */
  private async answer(endpoint: LlmEndpoint, outcome: Promise<LlmCallOutcome>): Promise<LlmCallOutcome> {
    return { ...(await outcome), endpoint: { name: endpoint.config.name, model: endpoint.config.model } };
  }
}

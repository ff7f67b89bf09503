import type { Clock } from '../../clock';
import { abortReason } from '../../errors';
import type { Logger } from '../../logger';
import type {
  Admission,
  AdmissionRequest,
  LlmCallMeta,
  LlmCallOptions,
  LlmCallOutcome,
  LlmGateway,
} from '../llm-gateway';
import type { CompletionRequest } from '../provider';
import { responseCacheKey, type CacheScope } from './cache-key';
import { CacheCounters, type CacheMetrics, type CacheStatus } from './cache-stats';
import type { CachedResponse, ResponseCache } from './response-cache';
import { replayChunks } from './response-replay';
import { SharedCalls } from './shared-calls';

/** What a shared call streams: the answer's text, or (reasoning) a thinking model's reasoning. */
interface StreamPiece {
  text: string;
  reasoning?: true;
}

export interface CachingGatewayOptions {
  /** The scheduler: every miss goes through it, with its quota, priorities and retries. */
  inner: LlmGateway;
  cache: ResponseCache;
  /** The provider and model a call is keyed on; per call when endpoints route agents apart. */
  scope: CacheScope | ((meta: LlmCallMeta) => CacheScope);
  ttlSeconds: number;
  clock: Clock;
  logger: Logger;
  metrics?: CacheMetrics;
}

const NO_USAGE = { promptTokens: 0, completionTokens: 0 };

/**
 * The response cache as a decorator of the LlmGateway port. A hit never enters the scheduler (no
 * quota slot, no RPM start): its text is replayed through `onDelta` and the outcome says
 * `cached: true`. Identical calls in flight share one provider call. Only complete answers are
 * stored: errors, 429s and aborts never reach the store (they reject), and a `length` (truncated)
 * or `other` finish is not kept. A failing cache (Redis down) is a miss, logged once per outage.
 *
 * Usage on a cached outcome is zero: `usage` reports what the provider billed for this chat; what
 * the cache saved is counted in `tokensSaved`.
 */
export class CachingGateway implements LlmGateway {
  private readonly counters = new CacheCounters();
  private readonly shared = new SharedCalls<LlmCallOutcome, StreamPiece>();
  private degraded = false;

  constructor(private readonly options: CachingGatewayOptions) {}

  admit(request: AdmissionRequest): Promise<Admission> {
    return this.options.inner.admit(request);
  }

  async complete(
    meta: LlmCallMeta,
    request: CompletionRequest,
    options: LlmCallOptions,
  ): Promise<LlmCallOutcome> {
    const { signal, onDelta, onReasoning } = options;
    if (signal.aborted) throw abortReason(signal);
    const scope = typeof this.options.scope === 'function' ? this.options.scope(meta) : this.options.scope;
    const key = responseCacheKey(scope, request);
    // An identical call already streaming is joined without asking the store.
    if (!this.shared.has(key)) {
      const hit = await this.read(key);
      if (signal.aborted) throw abortReason(signal);
      if (hit) return this.replay(hit, onDelta, signal);
    }
    const startedAt = this.options.clock.now();
    // Each caller follows both streams of the shared call: the answer's text and its reasoning.
    const follow = (piece: StreamPiece) =>
      piece.reasoning ? onReasoning?.(piece.text) : onDelta?.(piece.text);
    const { joined, result } = this.shared.run(key, signal, follow, (sharedSignal, fanOut) =>
      this.callProvider(key, scope, meta, request, sharedSignal, fanOut),
    );
    if (!joined) {
      this.counters.misses++;
      this.record({ type: 'lookup', result: 'miss', tokensSaved: 0 });
    }
    const outcome = await result;
    if (!joined) return { ...outcome, cached: false };
    this.counters.saved('shared', outcome.usage);
    this.record({ type: 'lookup', result: 'shared', tokensSaved: tokens(outcome.usage) });
    return {
      ...outcome,
      usage: NO_USAGE,
      waitMs: 0,
      // Time spent following the shared call: what this caller waited for its answer.
      processMs: this.options.clock.now() - startedAt,
      attempts: 0,
      cached: true,
    };
  }

  status(): CacheStatus {
    return this.counters.status({
      enabled: true,
      backend: this.options.cache.backend,
      ttlSeconds: this.options.ttlSeconds,
      entries: this.options.cache.size?.(),
    });
  }

  async close(): Promise<void> {
    await this.options.cache.close?.();
  }

  private replay(
    hit: CachedResponse,
    onDelta: ((text: string) => void) | undefined,
    signal: AbortSignal,
  ): LlmCallOutcome {
    for (const chunk of replayChunks(hit.text)) {
      if (signal.aborted) throw abortReason(signal);
      onDelta?.(chunk);
    }
    this.counters.saved('hit', hit.usage);
    this.record({ type: 'lookup', result: 'hit', tokensSaved: tokens(hit.usage) });
    return {
      text: hit.text,
      toolCalls: hit.toolCalls,
      finishReason: hit.finishReason,
      usage: NO_USAGE,
      waitMs: 0,
      processMs: 0,
      attempts: 0,
      cached: true,
    };
  }

  private async callProvider(
    key: string,
    scope: CacheScope,
    meta: LlmCallMeta,
    request: CompletionRequest,
    signal: AbortSignal,
    fanOut: (piece: StreamPiece) => void,
  ): Promise<LlmCallOutcome> {
    const outcome = await this.options.inner.complete(meta, request, {
      signal,
      onDelta: (text) => fanOut({ text }),
      onReasoning: (text) => fanOut({ text, reasoning: true }),
    });
    // An answer another endpoint's model gave (a fallback) is not this key's model's answer.
    const sameModel = outcome.endpoint === undefined || outcome.endpoint.model === scope.model;
    if (sameModel && isCompleteAnswer(outcome)) void this.write(key, outcome);
    return outcome;
  }

  private async read(key: string): Promise<CachedResponse | undefined> {
    try {
      const hit = await this.options.cache.get(key);
      this.recovered();
      return hit;
    } catch (error) {
      this.failed('get', error);
      return undefined;
    }
  }

  private async write(key: string, outcome: LlmCallOutcome): Promise<void> {
    const value: CachedResponse = {
      text: outcome.text,
      toolCalls: outcome.toolCalls,
      usage: outcome.usage,
      finishReason: outcome.finishReason,
    };
    try {
      await this.options.cache.set(key, value, this.options.ttlSeconds);
      this.counters.stored++;
      this.record({ type: 'stored' });
      this.recovered();
    } catch (error) {
      this.failed('set', error);
    }
  }

  private failed(operation: 'get' | 'set', error: unknown): void {
    this.counters.errors++;
    this.record({ type: 'error', operation });
    if (this.degraded) return;
    this.degraded = true;
    this.options.logger.warn(
      { backend: this.options.cache.backend, operation, error: String(error) },
      'LLM response cache unavailable: serving every call as a miss until it answers again',
    );
  }

  private recovered(): void {
    if (!this.degraded) return;
    this.degraded = false;
    this.options.logger.info({ backend: this.options.cache.backend }, 'LLM response cache answers again');
  }

  private record(event: Parameters<CacheMetrics['recordCache']>[0]): void {
    try {
      this.options.metrics?.recordCache(event);
    } catch {
      // A broken metrics sink must never fail a user's call.
    }
  }
}

/**
 * Whether an answer may be replayed to someone else: it finished on its own (`stop`) or asked for
 * tools (`tool_calls`: the next call's key holds the tool results, so different results never meet
 * this answer's continuation). A `length` finish is truncated, `other` is a filter or an unknown
 * stop: neither is kept. Errors, 429s and aborts reject before this point and are never stored.
 */
export function isCompleteAnswer(outcome: LlmCallOutcome): boolean {
  if (outcome.finishReason === 'stop') return outcome.text.length > 0 || outcome.toolCalls.length > 0;
  return outcome.finishReason === 'tool_calls' && outcome.toolCalls.length > 0;
}

function tokens(usage: { promptTokens: number; completionTokens: number }): number {
  return usage.promptTokens + usage.completionTokens;
}

import type { Usage } from '../provider';

/** The `cache` object of `GET /api/queue/status` (queue.cache). */
export interface CacheStatus {
  enabled: boolean;
  /** `memory`, `redis`, or `off`. */
  backend: string;
  /** Share of calls answered without a provider call, as the brief writes rates: "60%". */
  cacheHitRate: string;
  /** Calls answered from the cache. */
  hits: number;
  /** Calls that joined an identical call already in flight (single-flight). */
  sharedHits: number;
  /** Calls that went to the provider. */
  misses: number;
  /** Provider calls not made: hits + sharedHits. */
  callsSaved: number;
  /** Prompt + completion tokens of the answers served without a provider call. */
  tokensSaved: number;
  /** Answers written to the cache. */
  stored: number;
  /** Cache reads or writes that failed (each served as a miss). */
  errors: number;
  /** Entries held, where the backend can tell. */
  entries?: number;
  ttlSeconds: number;
}

/** What the cache reports to /metrics as it happens. */
export type CacheEvent =
  | { type: 'lookup'; result: 'hit' | 'shared' | 'miss'; tokensSaved: number }
  | { type: 'stored' }
  | { type: 'error'; operation: 'get' | 'set' };

export interface CacheMetrics {
  recordCache(event: CacheEvent): void;
}

/** Running totals behind CacheStatus. */
export class CacheCounters {
  hits = 0;
  sharedHits = 0;
  misses = 0;
  tokensSaved = 0;
  stored = 0;
  errors = 0;

  saved(kind: 'hit' | 'shared', usage: Usage): void {
    if (kind === 'hit') this.hits++;
    else this.sharedHits++;
    this.tokensSaved += usage.promptTokens + usage.completionTokens;
  }

  status(base: { enabled: boolean; backend: string; ttlSeconds: number; entries?: number }): CacheStatus {
    const callsSaved = this.hits + this.sharedHits;
    const lookups = callsSaved + this.misses;
    return {
      enabled: base.enabled,
      backend: base.backend,
      cacheHitRate: `${lookups === 0 ? 0 : Math.round((callsSaved / lookups) * 100)}%`,
      hits: this.hits,
      sharedHits: this.sharedHits,
      misses: this.misses,
      callsSaved,
      tokensSaved: this.tokensSaved,
      stored: this.stored,
      errors: this.errors,
      ...(base.entries !== undefined ? { entries: base.entries } : {}),
      ttlSeconds: base.ttlSeconds,
    };
  }
}

/** The status while LLM_CACHE=off: every field present, so dashboards need no special case. */
export function disabledCacheStatus(): CacheStatus {
  return new CacheCounters().status({ enabled: false, backend: 'off', ttlSeconds: 0 });
}

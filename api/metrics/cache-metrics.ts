import client from 'prom-client';
import type { CacheEvent, CacheMetrics } from '../llm/cache/cache-stats';

/** The LLM response cache's events (CacheMetrics): lookups by result, tokens saved, writes, errors. */
export class LlmCacheMetrics implements CacheMetrics {
  private readonly cacheLookups: client.Counter<'result'>;
  private readonly cacheTokensSaved: client.Counter;
  private readonly cacheStored: client.Counter;
  private readonly cacheErrors: client.Counter<'operation'>;

  constructor(registry: client.Registry) {
    const registers = [registry];
    this.cacheLookups = new client.Counter({
      name: 'troupe_llm_cache_lookups_total',
      help: 'LLM calls by cache result: hit (from the cache), shared (joined an identical call in flight), miss (provider call)',
      labelNames: ['result'],
      registers,
    });
    this.cacheTokensSaved = new client.Counter({
      name: 'troupe_llm_cache_tokens_saved_total',
      help: 'Prompt + completion tokens of answers served without a provider call',
      registers,
    });
    this.cacheStored = new client.Counter({
      name: 'troupe_llm_cache_stored_total',
      help: 'Answers written to the LLM response cache',
      registers,
    });
    this.cacheErrors = new client.Counter({
      name: 'troupe_llm_cache_errors_total',
      help: 'LLM response cache reads or writes that failed (served as misses)',
      labelNames: ['operation'],
      registers,
    });
  }

  /** The LLM response cache's events (CacheMetrics); the hit rate is hit+shared over all lookups. */
  recordCache(event: CacheEvent): void {
    switch (event.type) {
      case 'lookup':
        this.cacheLookups.inc({ result: event.result });
        if (event.tokensSaved > 0) this.cacheTokensSaved.inc(event.tokensSaved);
        break;
      case 'stored':
        this.cacheStored.inc();
        break;
      case 'error':
        this.cacheErrors.inc({ operation: event.operation });
        break;
    }
  }
}

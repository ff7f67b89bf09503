import type { CompletionResult } from '../provider';

/**
 * The port of the LLM response cache: answers stored under a key that names everything that
 * shapes them (cache-key.ts). Adapters: in-process (lru-response-cache.ts) and Redis
 * (redis-response-cache.ts); one behaviour suite runs against both. Adapters may throw (Redis
 * down): the caching gateway turns any failure into a miss, so a cache never fails a chat.
 */

/** What is kept of a provider answer: enough to replay it, nothing about who asked. */
export type CachedResponse = Pick<CompletionResult, 'text' | 'toolCalls' | 'usage' | 'finishReason'>;

export interface ResponseCache {
  /** `memory` or `redis`, for the status page. */
  readonly backend: string;
  /** The answer stored under `key`, or undefined when there is none or it expired. */
  get(key: string): Promise<CachedResponse | undefined>;
  /** Stores `value` for `ttlSeconds`; a value above the adapter's entry bound is not stored. */
  set(key: string, value: CachedResponse, ttlSeconds: number): Promise<void>;
  /** Entries held now, where the adapter can tell cheaply. */
  size?(): number;
  /** Resolves once the backend is reachable or has failed once (bounded; never rejects). */
  open?(): Promise<void>;
  close?(): Promise<void>;
}

/** The largest single answer kept: far above any real answer (1024 tokens is ~4–8 KB). */
export const MAX_ENTRY_BYTES = 1024 * 1024;

/** The serialised form both adapters measure and (Redis) store. */
export function serialise(value: CachedResponse): string {
  return JSON.stringify({
    text: value.text,
    toolCalls: value.toolCalls,
    usage: value.usage,
    finishReason: value.finishReason,
  });
}

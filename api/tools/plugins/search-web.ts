import { z } from 'zod';
import type { Config } from '../../../config';
import { defineToolPlugin, type ToolBreakerPolicy, type ToolPlugin } from '../tool-plugin';
import { OfflineSearch } from './search-backends/offline-search';
import type { SearchBackend, SearchResult } from './search-backends/search-backend';
import { SearxngSearch } from './search-backends/searxng-search';

export const searchWebParameters = z.object({
  query: z.string().trim().min(1).max(300).describe('What to search for, in plain words.'),
  maxResults: z.number().int().min(1).max(10).optional().describe('How many results to return (default 5).'),
});

export type SearchWebArgs = z.output<typeof searchWebParameters>;

export interface SearchWebResult {
  query: string;
  source: string;
  /** Set on fallback results: why these may be less relevant or less fresh. */
  note?: string;
  results: SearchResult[];
}

export interface SearchWebOptions {
  backend: SearchBackend;
  /** Used when the backend fails or its circuit is open (e.g. the offline corpus behind SearXNG). */
  fallbackBackend?: SearchBackend;
  maxConcurrent: number;
  maxPerMinute: number;
  cacheTtlSeconds: number;
  timeoutMs?: number;
  breaker?: Partial<ToolBreakerPolicy>;
  maxWaitMs?: number;
}

const DEFAULT_RESULTS = 5;

/** `search_web`: web search through the configured backend, protected by the brief's limits. */
export function createSearchWebPlugin(
  options: SearchWebOptions,
): ToolPlugin<typeof searchWebParameters, SearchWebResult> {
  const { backend, fallbackBackend } = options;
  return defineToolPlugin({
    name: 'search_web',
    description:
      'Search the web for current facts, news and documentation. Returns a list of results with title, url and ' +
      'snippet. Use it when the user asks to search or needs recent or factual information; cite the urls you use.',
    parameters: searchWebParameters,
    policy: {
      rateLimit: {
        maxConcurrent: options.maxConcurrent,
        maxPerMinute: options.maxPerMinute,
        timeout: options.timeoutMs ?? 8000,
        maxWaitMs: options.maxWaitMs,
      },
      cache: {
        enabled: options.cacheTtlSeconds > 0,
        ttl: options.cacheTtlSeconds,
        // Case and spacing do not change a search, so they must not split the cache either.
        keyStrategy: (args) => `${normaliseQuery(args.query)}|${args.maxResults ?? DEFAULT_RESULTS}`,
      },
      breaker: {
        errorThresholdPercentage: options.breaker?.errorThresholdPercentage ?? 50,
        volumeThreshold: options.breaker?.volumeThreshold ?? 5,
        resetTimeout: options.breaker?.resetTimeout ?? 30_000,
        rollingCountTimeout: options.breaker?.rollingCountTimeout,
      },
      maxResultTokens: 1200,
    },
    async execute(args, context) {
      const results = await backend.search(args.query, {
        maxResults: args.maxResults ?? DEFAULT_RESULTS,
        signal: context.signal,
      });
      return { query: args.query, source: backend.name, results };
    },
    fallback: fallbackBackend
      ? async (args, context, error) => {
          const results = await fallbackBackend.search(args.query, {
            maxResults: args.maxResults ?? DEFAULT_RESULTS,
            signal: context.signal,
          });
          return {
            query: args.query,
            source: fallbackBackend.name,
            note: `Live search is unavailable (${error.code}); these results come from the ${fallbackBackend.name} corpus and may be out of date.`,
            results,
          };
        }
      : undefined,
  });
}

/** `search_web` as configured by the SEARCH_* settings (config/schema.ts). */
export function searchWebFromConfig(
  search: Config['search'],
  overrides: { fetch?: typeof fetch; offline?: OfflineSearch } = {},
): ToolPlugin<typeof searchWebParameters, SearchWebResult> {
  const offline = overrides.offline ?? new OfflineSearch();
  const live =
    search.provider === 'searxng' && search.url
      ? new SearxngSearch({ baseUrl: search.url, fetch: overrides.fetch })
      : undefined;
  return createSearchWebPlugin({
    backend: live ?? offline,
    fallbackBackend: live ? offline : undefined,
    maxConcurrent: search.maxConcurrent,
    maxPerMinute: search.maxPerMinute,
    cacheTtlSeconds: search.cacheTtlSeconds,
  });
}

function normaliseQuery(query: string): string {
  return query.toLowerCase().replace(/\s+/g, ' ').trim();
}

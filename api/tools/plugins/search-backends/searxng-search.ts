import type { SearchBackend, SearchOptions, SearchResult } from './search-backend';

/** What we read of a SearXNG `format=json` answer (it carries more: answers, infoboxes, suggestions…). */
interface SearxngResponse {
  results?: Array<{ title?: unknown; url?: unknown; content?: unknown }>;
}

export interface SearxngSearchOptions {
  /** Base URL of the instance, e.g. http://localhost:8888 (its `search` endpoint must allow `format=json`). */
  baseUrl: string;
  fetch?: typeof fetch;
  /** Extra query parameters, e.g. `{ language: 'en', categories: 'news' }`. */
  params?: Record<string, string>;
}

/** SearXNG's JSON API: `GET {baseUrl}/search?q=…&format=json`. The caller's signal cancels the request. */
export class SearxngSearch implements SearchBackend {
  readonly name = 'searxng';
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly options: SearxngSearchOptions) {
    this.fetchImpl = options.fetch ?? fetch;
  }

  async search(query: string, { maxResults, signal }: SearchOptions): Promise<SearchResult[]> {
    const url = new URL(
      'search',
      this.options.baseUrl.endsWith('/') ? this.options.baseUrl : `${this.options.baseUrl}/`,
    );
    url.searchParams.set('q', query);
    url.searchParams.set('format', 'json');
    for (const [key, value] of Object.entries(this.options.params ?? {})) url.searchParams.set(key, value);

    const response = await this.fetchImpl(url, { signal, headers: { accept: 'application/json' } });
    if (!response.ok) {
      // Drain the body so the connection can be reused.
      await response.text().catch(() => undefined);
      // 403 usually means the instance does not enable the json format (settings.yml: search.formats).
      throw new Error(`SearXNG answered HTTP ${response.status}`);
    }
    let body: SearxngResponse;
    try {
      body = (await response.json()) as SearxngResponse;
    } catch {
      throw new Error('SearXNG answered with something that is not JSON');
    }
    if (!body || !Array.isArray(body.results)) throw new Error('SearXNG answer has no results list');
    return body.results
      .filter((result) => typeof result.url === 'string' && result.url !== '')
      .slice(0, maxResults)
      .map((result) => ({
        title: cleanText(result.title) || String(result.url),
        url: String(result.url),
        snippet: cleanText(result.content).slice(0, 500),
      }));
  }
}

function cleanText(value: unknown): string {
  return typeof value === 'string' ? value.replace(/\s+/g, ' ').trim() : '';
}

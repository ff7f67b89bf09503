/** The search port behind `search_web`: the offline corpus or a SearXNG instance. */

export interface SearchResult {
  title: string;
  url: string;
  snippet: string;
}

export interface SearchOptions {
  maxResults: number;
  signal: AbortSignal;
}

export interface SearchBackend {
  /** Shown to the model as the results' source, e.g. `offline` or `searxng`. */
  readonly name: string;
  search(query: string, options: SearchOptions): Promise<SearchResult[]>;
}

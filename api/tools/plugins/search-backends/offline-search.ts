import fs from 'node:fs';
import path from 'node:path';
import MiniSearch from 'minisearch';
import type { SearchBackend, SearchOptions, SearchResult } from './search-backend';

/** One document of the bundled corpus (api/tools/plugins/search-corpus/corpus.json). */
export interface CorpusDocument {
  id: string;
  title: string;
  url: string;
  /** The document's opening text (a few KB), already stripped of markup. */
  text: string;
  /** Where it comes from: `npm-readme`, `nodejs-docs`, `debian-doc`, `troupe`. */
  source: string;
  /** SPDX licence of the text. */
  license: string;
  tags?: string[];
}

export interface SearchCorpus {
  version: 1;
  generatedAt: string;
  documents: CorpusDocument[];
}

export const DEFAULT_CORPUS_FILE = 'corpus.json';

/** Words that say how to search, not what to find ("search the latest news about X"). */
const STOP_WORDS = new Set(
  (
    'a an the and or of to in on at for from by with about into over is are was were be been it its this that these ' +
    'those what which who how why when where do does did can could should would will me my i you your we our ' +
    'please search find look up show tell give latest recent news today current summarise summarize summary ' +
    'information info some any all more most'
  ).split(' '),
);

const SNIPPET_LENGTH = 320;

/**
 * Documents indexed per event-loop turn. Indexing the whole corpus at once held the loop for
 * ~0.4 s (2,478 documents, ~0.17 ms each) just after the server started listening: 25 a turn is a
 * few ms each, and the first requests of a cold server are answered meanwhile.
 */
const INDEX_CHUNK = 25;

interface Indexed {
  index: MiniSearch<CorpusDocument>;
  documents: Map<string, CorpusDocument>;
}

/**
 * Full-text search over the bundled corpus with MiniSearch. The corpus is read and indexed on the
 * first search, or by `load()` when the server warms up, a chunk per event-loop turn: a server that
 * never searches never pays for it, and one that indexes keeps answering while it does.
 */
export class OfflineSearch implements SearchBackend {
  readonly name = 'offline';
  private indexed?: Indexed;
  private loading?: Promise<Indexed>;

  constructor(private readonly options: { corpusFile?: string; documents?: CorpusDocument[] } = {}) {}

  async search(query: string, { maxResults, signal }: SearchOptions): Promise<SearchResult[]> {
    signal.throwIfAborted();
    const terms = queryTerms(query);
    if (terms.length === 0) return [];
    // A search that comes while the index is still being built waits for it, as long as its caller does.
    const { index, documents } = this.indexed ?? (await untilAborted(this.indexing(), signal));
    const hits = index.search(terms.join(' '), {
      boost: { title: 3, tags: 2 },
      prefix: (term) => term.length > 3,
      fuzzy: (term) => (term.length > 5 ? 0.15 : false),
      combineWith: 'OR',
    });
    return hits.slice(0, maxResults).map((hit) => {
      const document = documents.get(String(hit.id))!;
      return { title: document.title, url: document.url, snippet: bestSnippet(document.text, terms) };
    });
  }

  /**
   * Reads and indexes the corpus (once; later calls share it) and resolves with the number of
   * documents indexed. A failure (a missing corpus) is not kept: the next call tries again.
   */
  async load(): Promise<number> {
    return (await this.indexing()).documents.size;
  }

  private indexing(): Promise<Indexed> {
    this.loading ??= this.build().catch((error: unknown) => {
      this.loading = undefined;
      throw error;
    });
    return this.loading;
  }

  private async build(): Promise<Indexed> {
    const unique = new Map<string, CorpusDocument>();
    for (const document of this.options.documents ?? (await readCorpus(this.options.corpusFile)).documents) {
      if (!unique.has(document.id)) unique.set(document.id, document);
    }
    const index = new MiniSearch<CorpusDocument>({
      fields: ['title', 'text', 'tags'],
      extractField: (document, field) => {
        const value = document[field as keyof CorpusDocument];
        return Array.isArray(value) ? value.join(' ') : (value as string);
      },
      processTerm: (term) => {
        const lower = term.toLowerCase();
        return STOP_WORDS.has(lower) || lower.length < 2 ? null : lower;
      },
    });
    // MiniSearch waits a timer turn between chunks.
    await index.addAllAsync([...unique.values()], { chunkSize: INDEX_CHUNK });
    this.indexed = { index, documents: unique };
    return this.indexed;
  }
}

/** `promise`, or a rejection with the signal's reason as soon as it aborts (the promise goes on). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** Reads the corpus file; looks next to the sources first, then from dist/ back to the sources. */
export async function readCorpus(corpusFile?: string): Promise<SearchCorpus> {
  const candidates = corpusFile
    ? [corpusFile]
    : [
        path.join(__dirname, '..', 'search-corpus', DEFAULT_CORPUS_FILE),
        // Compiled: dist/api/tools/plugins/search-backends → the source tree's corpus (tsc copies no JSON data).
        path.join(
          __dirname,
          '..',
          '..',
          '..',
          '..',
          '..',
          'api',
          'tools',
          'plugins',
          'search-corpus',
          DEFAULT_CORPUS_FILE,
        ),
      ];
  const found = candidates.find((candidate) => fs.existsSync(candidate));
  if (!found) {
    throw new Error(
      `Search corpus not found (looked in ${candidates.join(', ')}); run scripts/build-search-corpus.ts`,
    );
  }
  const corpus = JSON.parse(await fs.promises.readFile(found, 'utf8')) as SearchCorpus;
  if (corpus.version !== 1 || !Array.isArray(corpus.documents))
    throw new Error(`${found} is not a version 1 search corpus`);
  return corpus;
}

function queryTerms(query: string): string[] {
  return (query.toLowerCase().match(/[\p{L}\p{N}][\p{L}\p{N}._-]*/gu) ?? [])
    .map((term) => term.replace(/[._-]+$/, ''))
    .filter((term) => term.length > 1 && !STOP_WORDS.has(term));
}

/** The window of text that holds the most distinct query terms. */
function bestSnippet(text: string, terms: string[]): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  const lower = flat.toLowerCase();
  let bestStart = 0;
  let bestScore = -1;
  for (const term of terms) {
    let from = 0;
    for (let seen = 0; seen < 20; seen++) {
      const at = lower.indexOf(term, from);
      if (at < 0) break;
      const start = Math.max(0, at - 60);
      const window = lower.slice(start, start + SNIPPET_LENGTH);
      const score = terms.reduce((sum, other) => sum + (window.includes(other) ? 1 : 0), 0);
      if (score > bestScore) {
        bestScore = score;
        bestStart = start;
      }
      from = at + term.length;
    }
  }
  // Start on a word boundary so the snippet does not open mid-word.
  if (bestStart > 0) {
    const space = flat.indexOf(' ', bestStart);
    if (space >= 0 && space - bestStart < 20) bestStart = space + 1;
  }
  const snippet = flat.slice(bestStart, bestStart + SNIPPET_LENGTH);
  return `${bestStart > 0 ? '…' : ''}${snippet}${bestStart + SNIPPET_LENGTH < flat.length ? '…' : ''}`;
}

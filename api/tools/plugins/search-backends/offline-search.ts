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
 * Full-text search over the bundled corpus with MiniSearch. The corpus file is read and indexed on
 * the first search (a few hundred ms at most), so a server that never searches never pays for it.
 */
export class OfflineSearch implements SearchBackend {
  readonly name = 'offline';
  private index?: MiniSearch<CorpusDocument>;
  private documents = new Map<string, CorpusDocument>();

  constructor(private readonly options: { corpusFile?: string; documents?: CorpusDocument[] } = {}) {}

  async search(query: string, { maxResults, signal }: SearchOptions): Promise<SearchResult[]> {
    signal.throwIfAborted();
    const index = this.ensureIndex();
    const terms = queryTerms(query);
    if (terms.length === 0) return [];
    const hits = index.search(terms.join(' '), {
      boost: { title: 3, tags: 2 },
      prefix: (term) => term.length > 3,
      fuzzy: (term) => (term.length > 5 ? 0.15 : false),
      combineWith: 'OR',
    });
    return hits.slice(0, maxResults).map((hit) => {
      const document = this.documents.get(String(hit.id))!;
      return { title: document.title, url: document.url, snippet: bestSnippet(document.text, terms) };
    });
  }

  /** Documents indexed (loads the corpus if needed). */
  size(): number {
    this.ensureIndex();
    return this.documents.size;
  }

  private ensureIndex(): MiniSearch<CorpusDocument> {
    if (this.index) return this.index;
    const unique = new Map<string, CorpusDocument>();
    for (const document of this.options.documents ?? loadCorpus(this.options.corpusFile).documents) {
      if (!unique.has(document.id)) unique.set(document.id, document);
    }
    const documents = [...unique.values()];
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
    index.addAll(documents);
    this.documents = new Map(documents.map((document) => [document.id, document]));
    this.index = index;
    return index;
  }
}

/** Reads the corpus file; looks next to the sources first, then from dist/ back to the sources. */
export function loadCorpus(corpusFile?: string): SearchCorpus {
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
  const corpus = JSON.parse(fs.readFileSync(found, 'utf8')) as SearchCorpus;
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

/**
 * Builds the offline search corpus for `search_web`:
 *   api/tools/plugins/search-corpus/corpus.json  (the documents, read by OfflineSearch)
 *   api/tools/plugins/search-corpus/SOURCES.md   (where every document comes from, under which licence)
 *
 * Sources, all on this machine (no network): the Troupe notes in search-corpus/troupe-notes.md,
 * the README of every package installed in node_modules (licence from its package.json), and the
 * Node.js API documentation installed by Debian's nodejs package (/usr/share/doc/nodejs/api).
 *
 * Run: npx tsx scripts/build-search-corpus.ts [--node-docs DIR] [--max-bytes N]
 */
import fs from 'node:fs';
import path from 'node:path';
import prettier from 'prettier';
import type { CorpusDocument, SearchCorpus } from '../api/tools/plugins/search-backends/offline-search';

const root = path.resolve(__dirname, '..');
const outDir = path.join(root, 'api', 'tools', 'plugins', 'search-corpus');
const notesFile = path.join(outDir, 'troupe-notes.md');
const nodeModules = path.join(root, 'node_modules');

const args = process.argv.slice(2);
const option = (name: string, fallback: string) => {
  const at = args.indexOf(name);
  return at >= 0 && args[at + 1] ? args[at + 1] : fallback;
};
const nodeDocsDir = option('--node-docs', '/usr/share/doc/nodejs/api');
const maxBytes = Number(option('--max-bytes', String(3_500_000)));

const README_CHARS = 3000;
const SECTION_CHARS = 2000;
const MIN_CHARS = 200;

interface PackageSource {
  name: string;
  version: string;
  license: string;
}

async function main(): Promise<void> {
  const troupe = troupeNotes();
  const packages: PackageSource[] = [];
  const readmes = npmReadmes(packages);
  const nodeDocs = nodeApiDocs();
  // Ours first, then whole READMEs, then Node.js sections until the size budget is spent.
  const documents: CorpusDocument[] = [];
  let bytes = 0;
  let skippedForSize = 0;
  for (const document of [...troupe, ...readmes, ...nodeDocs]) {
    const size = Buffer.byteLength(JSON.stringify(document));
    if (bytes + size > maxBytes) {
      skippedForSize++;
      continue;
    }
    bytes += size;
    documents.push(document);
  }
  const corpus: SearchCorpus = { version: 1, generatedAt: new Date().toISOString(), documents };
  fs.writeFileSync(path.join(outDir, 'corpus.json'), `${JSON.stringify(corpus)}\n`);
  const included = new Set(documents.map((document) => document.id));
  const sourcesFile = path.join(outDir, 'SOURCES.md');
  const sources = sourcesMarkdown(
    documents,
    packages.filter((pkg) => included.has(`npm:${pkg.name}`)),
    skippedForSize,
  );
  // Formatted as the repository's prettier would, so a rebuild leaves `npm run format` nothing to do.
  const prettierOptions = (await prettier.resolveConfig(sourcesFile)) ?? {};
  fs.writeFileSync(
    sourcesFile,
    await prettier.format(sources, { ...prettierOptions, filepath: sourcesFile }),
  );
  const bySource = countBy(documents.map((document) => document.source));
  console.log(
    `corpus.json: ${documents.length} documents, ${(bytes / 1e6).toFixed(2)} MB ` +
      `(${Object.entries(bySource)
        .map(([source, count]) => `${source} ${count}`)
        .join(', ')}; ${skippedForSize} left out for size)`,
  );
}

function troupeNotes(): CorpusDocument[] {
  const text = fs.readFileSync(notesFile, 'utf8');
  return splitSections(text, 2).flatMap(({ heading, level, body }) => {
    // The level-1 heading is the file's own introduction, not a document.
    if (!heading || level !== 2) return [];
    const anchor = slug(heading);
    return [
      {
        id: `troupe:${anchor}`,
        title: heading,
        url: `api/tools/plugins/search-corpus/troupe-notes.md#${anchor}`,
        text: clean(body),
        source: 'troupe',
        license: 'MIT',
        tags: ['llm', 'rate limit', 'provider'],
      },
    ];
  });
}

function npmReadmes(packages: PackageSource[]): CorpusDocument[] {
  const documents: CorpusDocument[] = [];
  for (const dir of packageDirs()) {
    let manifest: Record<string, unknown>;
    try {
      manifest = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as Record<
        string,
        unknown
      >;
    } catch {
      continue;
    }
    const name = typeof manifest.name === 'string' ? manifest.name : undefined;
    const license = licenceOf(manifest);
    // Aliased installs can repeat a name; the first copy wins.
    if (!name || !license || packages.some((pkg) => pkg.name === name)) continue;
    const readme = fs.readdirSync(dir).find((file) => /^readme(\.(md|markdown|txt))?$/i.test(file));
    if (!readme) continue;
    const text = clean(fs.readFileSync(path.join(dir, readme), 'utf8')).slice(0, README_CHARS);
    if (text.length < MIN_CHARS) continue;
    const description = typeof manifest.description === 'string' ? manifest.description.trim() : '';
    const keywords = Array.isArray(manifest.keywords)
      ? manifest.keywords.filter((k) => typeof k === 'string')
      : [];
    packages.push({ name, version: String(manifest.version ?? ''), license });
    documents.push({
      id: `npm:${name}`,
      title: description ? `${name}: ${description}`.slice(0, 200) : name,
      url: `https://www.npmjs.com/package/${name}`,
      text,
      source: 'npm-readme',
      license,
      tags: ['npm', ...(keywords as string[]).slice(0, 10)],
    });
  }
  return documents;
}

/** Top-level packages only (nested copies are older versions of the same READMEs). */
function packageDirs(): string[] {
  if (!fs.existsSync(nodeModules)) return [];
  const dirs: string[] = [];
  for (const entry of fs.readdirSync(nodeModules).sort()) {
    if (entry.startsWith('.')) continue;
    const full = path.join(nodeModules, entry);
    if (entry.startsWith('@')) {
      for (const scoped of fs.readdirSync(full).sort()) dirs.push(path.join(full, scoped));
    } else {
      dirs.push(full);
    }
  }
  return dirs;
}

function licenceOf(manifest: Record<string, unknown>): string | undefined {
  const license = manifest.license as unknown;
  const value =
    typeof license === 'string'
      ? license
      : license && typeof license === 'object' && typeof (license as { type?: unknown }).type === 'string'
        ? (license as { type: string }).type
        : Array.isArray(manifest.licenses)
          ? (manifest.licenses as Array<{ type?: string }>)
              .map((item) => item.type)
              .filter(Boolean)
              .join(' OR ')
          : undefined;
  // Without a licence we may not redistribute the text.
  if (!value || /unlicensed|see license in/i.test(value)) return undefined;
  return value;
}

function nodeApiDocs(): CorpusDocument[] {
  if (!fs.existsSync(nodeDocsDir)) {
    console.warn(`No Node.js docs at ${nodeDocsDir}; skipping them`);
    return [];
  }
  const documents: CorpusDocument[] = [];
  for (const file of fs
    .readdirSync(nodeDocsDir)
    .filter((name) => name.endsWith('.md'))
    .sort()) {
    const page = file.replace(/\.md$/, '');
    if (page === 'index' || page === 'all' || page === 'synopsis' || page === 'documentation') continue;
    const markdown = fs.readFileSync(path.join(nodeDocsDir, file), 'utf8');
    const htmlFile = path.join(nodeDocsDir, `${page}.html`);
    const anchors = fs.existsSync(htmlFile) ? htmlAnchors(fs.readFileSync(htmlFile, 'utf8')) : [];
    const headings = markdownHeadings(markdown);
    const anchorOf = (heading: string, index: number) =>
      anchors.length === headings.length ? anchors[index] : undefined;
    const pageTitle = headings[0] ?? page;
    let headingIndex = 0;
    for (const section of splitSections(markdown, 3)) {
      // Map each section to its heading's position among all headings (to find the HTML anchor).
      while (headingIndex < headings.length && section.heading && headings[headingIndex] !== section.heading)
        headingIndex++;
      const anchor = section.heading ? anchorOf(section.heading, headingIndex) : undefined;
      const text = clean(section.body).slice(0, SECTION_CHARS);
      if (text.length < MIN_CHARS) continue;
      const heading = stripInline(section.heading ?? pageTitle);
      documents.push({
        id: `nodejs:${page}#${anchor ?? documents.length}`,
        title:
          heading === pageTitle ? `Node.js ${pageTitle}` : `Node.js ${stripInline(pageTitle)}: ${heading}`,
        url: `https://nodejs.org/docs/latest-v20.x/api/${page}.html${anchor ? `#${anchor}` : ''}`,
        text,
        source: 'nodejs-docs',
        license: 'MIT',
        tags: ['node.js', page],
      });
    }
  }
  return documents;
}

/** Headings of every level outside code fences, in order (Node's HTML gives each an id in the same order). */
function markdownHeadings(markdown: string): string[] {
  const headings: string[] = [];
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    const match = !fenced && /^(#{1,6})\s+(.*)$/.exec(line);
    if (match) headings.push(match[2].trim());
  }
  return headings;
}

function htmlAnchors(html: string): string[] {
  const content = html.slice(html.indexOf('<div id="apicontent">') + 1 || 0);
  return [...content.matchAll(/<h[1-6][^>]*>.*?<a class="mark" href="#([^"]+)"/g)].map((match) => match[1]);
}

/** Splits markdown into sections at headings of level <= maxLevel (outside code fences). */
function splitSections(
  markdown: string,
  maxLevel: number,
): Array<{ heading?: string; level: number; body: string }> {
  const sections: Array<{ heading?: string; level: number; body: string[] }> = [{ level: 0, body: [] }];
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    const match = !fenced && /^(#{1,6})\s+(.*)$/.exec(line);
    if (match && match[1].length <= maxLevel) {
      sections.push({ heading: match[2].trim(), level: match[1].length, body: [] });
    } else {
      sections[sections.length - 1].body.push(line);
    }
  }
  return sections.map((section) => ({
    heading: section.heading,
    level: section.level,
    body: section.body.join('\n'),
  }));
}

/** Markdown/HTML to plain text: no badges, images, link targets, tags, comments or duplicate CommonJS examples. */
function clean(markdown: string): string {
  return markdown
    .replace(/<!--[\s\S]*?-->/g, ' ')
    .replace(/```cjs[\s\S]*?```/g, ' ')
    .replace(/```[a-z]*\n?/gi, '\n')
    .replace(/!\[[^\]]*\]\([^)]*\)/g, ' ')
    .replace(/!\[[^\]]*\]\[[^\]]*\]/g, ' ')
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/\[([^\]]+)\]\[[^\]]*\]/g, '$1')
    .replace(/^\s*\[[^\]]+\]:\s*\S+.*$/gm, ' ')
    .replace(/<\/?[a-zA-Z][^>\n]*>/g, ' ')
    .replace(/&nbsp;/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&')
    .replace(/^#{1,6}\s+/gm, '')
    .replace(/^\s*>\s?/gm, '')
    .replace(/[*_]{2,}|`+/g, '')
    .replace(/^\s*\|?[-:| ]+\|[-:| ]*$/gm, ' ')
    .replace(/\|/g, ' ')
    .replace(/[ \t]+/g, ' ')
    .replace(/\n\s*\n+/g, '\n')
    .trim();
}

function stripInline(text: string): string {
  return clean(text).replace(/\s+/g, ' ');
}

function slug(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s-]/gu, '')
    .trim()
    .replace(/\s+/g, '-');
}

function countBy(values: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}

function sourcesMarkdown(
  documents: CorpusDocument[],
  packages: PackageSource[],
  skippedForSize: number,
): string {
  const bySource = countBy(documents.map((document) => document.source));
  const byLicence = countBy(packages.map((pkg) => pkg.license));
  const lines = [
    '# Sources of the offline search corpus',
    '',
    'Generated by `scripts/build-search-corpus.ts` — do not edit by hand; rerun the script instead.',
    '`corpus.json` holds the opening text (a few KB, markup stripped) of every document below, with its',
    'title, a URL to the original and its licence; `search_web` indexes it with MiniSearch when',
    'SEARCH_PROVIDER=offline (the default), and falls back to it when SearXNG is unavailable.',
    '',
    `Documents: ${documents.length}${skippedForSize ? ` (${skippedForSize} more left out to keep the file small)` : ''}.`,
    '',
    '| source | documents | licence | where from |',
    '|---|---|---|---|',
    `| troupe | ${bySource.troupe ?? 0} | MIT (this project) | \`troupe-notes.md\`: our summaries of the providers' public rate-limit documentation |`,
    `| npm-readme | ${bySource['npm-readme'] ?? 0} | each package's own (below) | README of each package installed in \`node_modules\` (top level); URL https://www.npmjs.com/package/NAME |`,
    `| nodejs-docs | ${bySource['nodejs-docs'] ?? 0} | MIT (Node.js licence; see /usr/share/doc/nodejs/copyright) | Node.js API documentation as installed by Debian's \`nodejs\` package (\`${nodeDocsDir}\`), one document per section; URL on nodejs.org |`,
    '',
    '## npm packages by licence',
    '',
    ...Object.entries(byLicence)
      .sort((a, b) => b[1] - a[1])
      .map(([licence, count]) => `- ${licence}: ${count}`),
    '',
    '## npm packages',
    '',
    '| package | version | licence |',
    '|---|---|---|',
    ...packages.map((pkg) => `| ${pkg.name} | ${pkg.version} | ${pkg.license} |`),
    '',
  ];
  return lines.join('\n');
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

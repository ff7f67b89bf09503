import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/** Debian's Chromium, driven by playwright-core (never a downloaded browser). */
export const CHROMIUM = '/usr/bin/chromium';
export const haveChromium = fs.existsSync(CHROMIUM);

/** A headless Chromium with the flags the page tests use on a shared CI machine. */
export async function launchChromium(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/**
 * GET as JSON on a new connection each time (no keep-alive): behind node:cluster each connection
 * goes to the next worker, so repeated calls reach every worker in turn.
 */
export function getJson<T = Record<string, unknown>>(
  url: string,
  options: { method?: string; headers?: Record<string, string> } = {},
): Promise<T> {
  return new Promise((resolve, reject) => {
    http
      .request(
        url,
        { agent: false, method: options.method ?? 'GET', headers: options.headers },
        (response) => {
          let body = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => (body += chunk));
          response.on('end', () => {
            try {
              resolve(JSON.parse(body) as T);
            } catch (error) {
              reject(error as Error);
            }
          });
        },
      )
      .on('error', reject)
      .end();
  });
}

/** One figure as the page shows it: the endpoint and JSON path its HTML names, and its text. */
export interface PageFigure {
  api: string;
  field: string;
  text: string;
}

/** One table row as the page shows it: the endpoint, the rows' path, the row's key and cells. */
export interface PageRow {
  api: string;
  rows: string;
  keyField: string;
  key: string;
  cells: Record<string, string>;
}

/** A table as the page shows it: where its rows come from, and how many it shows. */
export interface PageTable {
  id: string;
  api: string;
  rows: string;
  keyField: string;
  count: number;
}

export interface PageReading {
  figures: PageFigure[];
  rows: PageRow[];
  tables: PageTable[];
}

/** Reads every figure and table row off the page, with the API field each one names. */
export async function readPage(page: Page): Promise<PageReading> {
  return (await page.evaluate(READ_PAGE)) as PageReading;
}

/** Runs in the page (as a string: the tests' TypeScript has no DOM types). */
const READ_PAGE = `(() => {
  const apiOf = (element) => element.closest('[data-api]')?.dataset.api ?? '/api/dashboard/snapshot';
  const figures = [...document.querySelectorAll('[data-field]')].map((element) => ({
    api: apiOf(element),
    field: element.dataset.field,
    text: element.textContent ?? '',
  }));
  const rows = [];
  const tables = [];
  for (const table of document.querySelectorAll('table[data-rows]')) {
    tables.push({
      id: table.id,
      api: apiOf(table),
      rows: table.dataset.rows,
      keyField: table.dataset.key,
      count: table.querySelectorAll('tbody tr').length,
    });
    for (const tr of table.querySelectorAll('tbody tr')) {
      const cells = {};
      for (const td of tr.querySelectorAll('td')) cells[td.dataset.column] = td.textContent ?? '';
      rows.push({ api: apiOf(table), rows: table.dataset.rows, keyField: table.dataset.key, key: tr.dataset.key, cells });
    }
  }
  return { figures, rows, tables };
})()`;

/** The value at a dotted path, as the page does it. */
export function at(object: unknown, dotted: string): unknown {
  return dotted
    .split('.')
    .reduce<unknown>(
      (value, key) => (value == null ? undefined : (value as Record<string, unknown>)[key]),
      object,
    );
}

/** How the page writes a value (dashboard.js `text`). */
export function asText(value: unknown): string {
  if (value === undefined || value === null) return 'n/a';
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/**
 * Every figure and row on the page that differs from the endpoint's answer (`bodies` by endpoint
 * path); an empty list when the page shows exactly what the APIs report.
 */
export function mismatches(
  page: PageReading,
  bodies: Record<string, unknown>,
  /** Accepts a difference in a figure that moves with time (`what`: the field, or table.row.column). */
  tolerated: (what: string, pageText: string, apiText: string) => boolean = () => false,
): string[] {
  const problems: string[] = [];
  for (const figure of page.figures) {
    const expected = asText(at(bodies[figure.api], figure.field));
    if (figure.text !== expected && !tolerated(figure.field, figure.text, expected))
      problems.push(`${figure.api} ${figure.field}: page ${figure.text}, API ${expected}`);
  }
  for (const table of page.tables) {
    let items = at(bodies[table.api], table.rows) as unknown;
    if (items && !Array.isArray(items)) {
      items = Object.entries(items).map(([name, value]) => ({ [table.keyField]: name, value }));
    }
    const list = (items ?? []) as Array<Record<string, unknown>>;
    if (list.length !== table.count)
      problems.push(`#${table.id}: page ${table.count} rows, API ${list.length}`);
    for (const row of page.rows.filter(
      (candidate) => candidate.api === table.api && candidate.rows === table.rows,
    )) {
      const item = list.find((candidate) => asText(candidate[table.keyField]) === row.key);
      if (!item) {
        problems.push(`#${table.id}: row ${row.key} is not in the API's answer`);
        continue;
      }
      for (const [column, text] of Object.entries(row.cells)) {
        const expected = asText(item[column]);
        if (text !== expected && !tolerated(`${table.rows}.${row.key}.${column}`, text, expected))
          problems.push(`#${table.id} ${row.key}.${column}: page ${text}, API ${asText(item[column])}`);
      }
    }
  }
  return problems;
}

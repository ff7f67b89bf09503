import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { redisReachable } from '../helpers/redis-reachable';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';
import { REDIS_URL, connectRedis, randomPrefix, removeKeys } from '../llm/redis-helpers';
import { waitUntil } from '../streaming/wait-until';
import { CHROMIUM, getJson, haveChromium, launchChromium, mismatches, readPage } from './dashboard-page';

/**
 * Every figure on /dashboard, read off the page in headless Chromium, against the endpoint its HTML
 * names (GET /api/queue/status, /api/sse/status, /api/tool-system/status): for one process, and for
 * `npm start -- --workers 2` sharing Redis, where the page lists both workers whichever one answers.
 */
if (!haveChromium) {
  process.stderr.write(
    `${CHROMIUM} not found: skipping the dashboard figure tests (apt-get install chromium)\n`,
  );
}
const describeBrowser = haveChromium ? describe : describe.skip;
const ROOT = path.resolve(__dirname, '..', '..');
const TOKEN = 'figures-admin-token';
const ENDPOINTS = [
  '/api/queue/status',
  '/api/sse/status',
  '/api/tool-system/status',
  '/api/dashboard/snapshot',
];

jest.setTimeout(300_000);

/** Waits for the page's next snapshot (the live feed pushes one a second). */
async function nextSnapshot(page: Page): Promise<void> {
  const stamp = async () => Number(await page.locator('#updated').getAttribute('data-timestamp'));
  const before = await stamp();
  const deadline = Date.now() + 30_000;
  while ((await stamp()) <= before) {
    if (Date.now() > deadline) throw new Error('no new snapshot within 30 s');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Reads the page and the endpoints until they agree (figures move between two reads: a start ages
 * out of the minute, an average decays), or fails listing what still differs after 20 tries.
 * `answers(url)` fetches an endpoint's body as the instance that fed the page would answer it.
 */
async function expectPageMatchesApis(
  page: Page,
  answers: (pathname: string, answeredBy: string) => Promise<unknown>,
): Promise<void> {
  let problems: string[] = [];
  for (let attempt = 0; attempt < 20; attempt++) {
    await nextSnapshot(page);
    const reading = await readPage(page);
    const answeredBy = reading.figures.find((figure) => figure.field === 'answeredBy')!.text;
    const bodies: Record<string, unknown> = {};
    for (const endpoint of ENDPOINTS) bodies[endpoint] = await answers(endpoint, answeredBy);
    // While calls wait, their waited time grows between the page's snapshot and the endpoint's
    // answer: by at most the time between the two, for each waiting call.
    const shownAt = Number(await page.locator('#updated').getAttribute('data-timestamp'));
    const queue = bodies['/api/queue/status'] as { timestamp: number; queue: { queueLength: number } };
    const growth = Math.max(0, queue.timestamp - shownAt) * Math.max(1, queue.queue.queueLength);
    const tolerated = (what: string, pageText: string, apiText: string) =>
      /waitReasons\.lastMinute|oldestWaitMs|lastMinute\.byReason/.test(what) &&
      Number(apiText) >= Number(pageText) &&
      Number(apiText) - Number(pageText) <= growth;
    problems = mismatches(reading, bodies, tolerated);
    // Every endpoint named on the page was compared; a figure naming no endpoint would be missed.
    const named = [
      ...reading.figures.map((figure) => figure.api),
      ...reading.tables.map((table) => table.api),
    ];
    expect(new Set(named)).toEqual(new Set(ENDPOINTS));
    expect(reading.figures.length).toBeGreaterThan(50);
    if (problems.length === 0) return;
  }
  throw new Error(`the page differs from the APIs:\n${problems.join('\n')}`);
}

describeBrowser('the dashboard shows what the APIs report: one process', () => {
  let troupe: TestTroupe;
  let browser: { context: BrowserContext; close(): Promise<void> };

  beforeAll(async () => {
    troupe = await startTestTroupe({ ADMIN_TOKEN: TOKEN, LLM_MAX_CONCURRENT: '2', SIM_LATENCY_MS: '20' });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await troupe?.stop();
  });

  const chat = (message: string) =>
    fetch(`${troupe.url}/api/chat`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ message }),
    }).then((response) => response.json());
  const admin = (method: string, pathname: string) =>
    fetch(`${troupe.url}${pathname}`, { method, headers: { Authorization: `Bearer ${TOKEN}` } });

  test('every tile, table and the why-calls-wait panel, against their endpoints, idle and while calls wait', async () => {
    // Some history first: chats, and one asked twice so the LLM cache reports a hit.
    await Promise.all([chat('How do rate limits work?'), chat('Plan an offsite for 40 people')]);
    await chat('How do rate limits work?');
    const page = await browser.context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(`${troupe.url}/dashboard`);
    const answers = (pathname: string) => getJson(`${troupe.url}${pathname}`);
    await expectPageMatchesApis(page, answers);

    // The cache tile reads the status's own field (it used to read one the status never had).
    const status = (await getJson(`${troupe.url}/api/queue/status`)) as {
      queue: { cache: { cacheHitRate: string; hits: number } };
    };
    expect(status.queue.cache.hits).toBeGreaterThan(0);
    expect(await page.locator('#tile-cache .value').textContent()).toBe(status.queue.cache.cacheHitRate);
    expect(await page.locator('#tile-instances .value').textContent()).toBe('1');
    expect(await page.locator('#instances tbody tr').count()).toBe(1);

    // Calls that wait with nothing in flight say what they wait on: here an operator's pause.
    await admin('POST', '/api/queue/pause');
    const waiting = chat('What is AIMD?');
    const panel = page.locator('#wait-reasons .wait-now');
    const deadline = Date.now() + 60_000;
    const said = async () => ((await panel.textContent()) ?? '').replace(/\s+/g, ' ').trim();
    while (!/^paused — 1 calls wait: an operator paused the queue\.$/.test(await said())) {
      if (Date.now() > deadline) throw new Error(`the panel never said paused: ${await said()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await expectPageMatchesApis(page, answers);
    expect(
      await page.locator('#wait-lanes tbody tr[data-key="host"] td[data-column="waiting"]').textContent(),
    ).toBe('1');
    await admin('POST', '/api/queue/resume');
    await waiting;
    expect(problems).toEqual([]);
    await page.close();
  });
});

const withRedis = redisReachable(REDIS_URL);

/**
 * `--workers 2` on Redis (the workers share the quota and publish their figures there) and without
 * (the primary relays the figures and operator commands over IPC; each worker keeps its own limits).
 */
function workersSuite(redis: boolean): void {
  let child: ChildProcess | undefined;
  let dataDir: string;
  let browser: { context: BrowserContext; close(): Promise<void> } | undefined;
  const prefix = randomPrefix();
  let stdout = '';
  let stderr = '';

  afterAll(async () => {
    await browser?.close();
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child!.once('exit', resolve));
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, 30_000)))]);
      clearTimeout(timer);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    if (redis) {
      const client = await connectRedis();
      await removeKeys(client, prefix);
      client.disconnect();
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('both workers on the page whichever one answers, every figure as that worker reports it, one pause for both', async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-dashboard-cluster-'));
    child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'server.ts'), '--workers', '2'], {
      cwd: ROOT,
      env: {
        ...process.env,
        PORT: '0',
        HOST: '127.0.0.1',
        DATA_DIR: dataDir,
        LOG_LEVEL: 'warn',
        SIM_LATENCY_MS: '5',
        ADMIN_TOKEN: TOKEN,
        REDIS_URL: redis ? REDIS_URL : '',
        REDIS_KEY_PREFIX: prefix,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    try {
      await waitUntil(() => (stdout.match(/Troupe is ready at/g)?.length ?? 0) >= 2, 180_000);
    } catch (error) {
      throw new Error(`the workers did not start: ${String(error)}\nstdout:\n${stdout}\nstderr:\n${stderr}`);
    }
    const url = /Troupe is ready at (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)![1];

    // Both workers published themselves: any of them lists both.
    type Status = {
      instance: { id: string };
      instances: Array<{ id: string }>;
      queue: { instanceCount: number };
    };
    const seen = new Map<string, Status>();
    const deadline = Date.now() + 60_000;
    while (seen.size < 2 || [...seen.values()].some((status) => status.queue.instanceCount !== 2)) {
      if (Date.now() > deadline)
        throw new Error(`the workers never listed each other: ${JSON.stringify([...seen])}`);
      const status = await getJson<Status>(`${url}/api/queue/status`);
      seen.set(status.instance.id, status);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const workerIds = [...seen.keys()].sort();
    for (const message of ['How do rate limits work?', 'Plan an offsite']) {
      await fetch(`${url}/api/chat`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json', Connection: 'close' },
        body: JSON.stringify({ message }),
      }).then((response) => response.json());
    }

    browser = await launchChromium();
    const page = await browser.context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(`${url}/dashboard`);
    await nextSnapshot(page);
    expect(await page.locator('#tile-instances .value').textContent()).toBe('2');
    expect((await page.locator('#tile-instances .sub').textContent())?.trim()).toMatch(
      /^cluster · answered by /,
    );
    const rowIds = await page.evaluate(
      "[...document.querySelectorAll('#instances tbody tr')].map((row) => row.dataset.key)",
    );
    expect(rowIds).toEqual(workerIds);

    // The page's feed comes from one worker; each endpoint is asked (on new connections, which the
    // cluster hands round-robin) until that worker answers, where the body says who answered.
    const answers = async (pathname: string, answeredBy: string) => {
      for (let attempt = 0; attempt < 20; attempt++) {
        const body = await getJson<Record<string, unknown>>(`${url}${pathname}`);
        const by =
          pathname === '/api/queue/status'
            ? (body.instance as { id: string }).id
            : pathname === '/api/dashboard/snapshot'
              ? (body.answeredBy as string)
              : answeredBy;
        if (by === answeredBy) return body;
      }
      throw new Error(`${answeredBy} never answered ${pathname}`);
    };
    await expectPageMatchesApis(page, answers);

    // An operator's pause, sent to whichever worker takes it, reaches both.
    await getJson(`${url}/api/queue/pause`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${TOKEN}` },
    });
    const pausedOn = new Set<string>();
    for (let attempt = 0; attempt < 100 && pausedOn.size < 2; attempt++) {
      const status = await getJson<Status & { instance: { paused: boolean } }>(`${url}/api/queue/status`);
      // Each worker's own figures (not the cluster's "paused anywhere").
      if (status.instance.paused) pausedOn.add(status.instance.id);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect([...pausedOn].sort()).toEqual(workerIds);
    await getJson(`${url}/api/queue/resume`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${TOKEN}` },
    });
    expect(problems).toEqual([]);
    await page.close();
  });
}

(haveChromium && withRedis ? describe : describe.skip)(
  'the dashboard shows what the APIs report: npm start -- --workers 2 on Redis',
  () => workersSuite(true),
);
describeBrowser('the dashboard shows what the APIs report: npm start -- --workers 2 without Redis', () =>
  workersSuite(false),
);

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';

/**
 * The chat page and the dashboard in a real browser: Debian's Chromium driven by playwright-core
 * (never a downloaded browser). .ci/run installs chromium, so CI always runs these; a developer
 * machine without it skips them, saying so.
 */
const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'dashboard-admin-token';
// `npm run screenshots` sets this to docs/screenshots; otherwise the pictures go to a temp dir.
const FOR_DOCS = process.env.SCREENSHOT_DIR !== undefined;
const SCREENSHOT_DIR = process.env.SCREENSHOT_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-shots-'));

const haveChromium = fs.existsSync(CHROMIUM);
if (!haveChromium) {
  process.stderr.write(
    `${CHROMIUM} not found: skipping the browser tests (apt-get install chromium; .ci/run does)\n`,
  );
}
const describeBrowser = haveChromium ? describe : describe.skip;

jest.setTimeout(120_000);

describeBrowser('pages served by Troupe, in headless Chromium', () => {
  let troupe: TestTroupe;
  let context: BrowserContext;
  let userDataDir: string;

  beforeAll(async () => {
    troupe = await startTestTroupe({
      ADMIN_TOKEN: TOKEN,
      // Slow enough that text visibly streams and the queue fills; fast enough for a test.
      SIM_LATENCY_MS: '150',
      SIM_TOKENS_PER_S: '400',
      LLM_MAX_CONCURRENT: '2',
      // No chat-latency target: on a slow machine it could refuse most of the burst the dashboard test needs.
    });
    userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
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
  });

  afterAll(async () => {
    await context?.close();
    await troupe?.stop();
    if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
  });

  async function openPage(pathname: string): Promise<Page> {
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    await page.goto(`${troupe.url}${pathname}`);
    (page as Page & { problems: string[] }).problems = problems;
    return page;
  }

  test('/ streams a multi-agent chat, each agent in its own card, to done', async () => {
    const page = await openPage('/');
    await page.fill('#message', 'How should we plan a team offsite for 40 people?');
    await page.click('#send');
    // While streaming, some agent card is already visible with text before the run is done.
    await page.locator('.agent .agent-text:not(:empty)').first().waitFor();
    await page.locator('[data-testid="done"]').waitFor({ timeout: 60_000 });
    await expectText(page, '#status', 'done');
    for (const agent of ['host', 'planner', 'critic', 'reporter']) {
      const text = await page.locator(`.agent[data-agent="${agent}"] .agent-text`).first().textContent();
      expect(text?.trim().length).toBeGreaterThan(10);
      const meta = await page.locator(`.agent[data-agent="${agent}"] .meta`).first().textContent();
      expect(meta).toMatch(/waited \d+ ms · worked \d+ ms · \d+ tokens/);
    }
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'chat.png'), fullPage: true });
    expect((page as Page & { problems: string[] }).problems).toEqual([]);
    await page.close();
  });

  test('/dashboard shows live figures that change, and pause / resume / clear ask for the admin token', async () => {
    const page = await openPage('/dashboard');
    await expectText(page, '#connection', '● live');
    const stamp = async () => Number(await page.locator('#updated').getAttribute('data-timestamp'));
    const first = await stamp();
    await until(async () => (await stamp()) > first, 'a second snapshot');
    // The cache tile shows the status's own figure (test/web/dashboard-figures.test.ts checks them all).
    const status = (await (await fetch(`${troupe.url}/api/queue/status`)).json()) as {
      queue: { cache: { cacheHitRate: string } };
    };
    await expectText(page, '#tile-cache .value', status.queue.cache.cacheHitRate);
    await expectText(page, '#tile-instances .value', '1');
    const rpm = async () =>
      Number(/^(\d+) \/ 500$/.exec(squash(await page.locator('#tile-rpm .value').textContent()))?.[1]);
    const rpmBefore = await rpm();
    expect(rpmBefore).toBeGreaterThanOrEqual(0);

    // Chats from outside the page: the figures must follow.
    // For the docs' picture, a longer burst so the charts have a shape; the test needs only a few.
    const chats = Array.from({ length: FOR_DOCS ? 16 : 6 }, (_, index) =>
      fetch(`${troupe.url}/api/chat`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ message: `dashboard load ${index}`, mode: 'multi_agent' }),
      }).then((response) => response.json()),
    );
    await expectText(page, '#tile-in-flight .value', /^[12] \/ 2$/);
    await until(async () => (await rpm()) > rpmBefore, 'the rolling RPM to rise');
    // Something waits: calls in the LLM queue, or chats in the line before their first call.
    await until(
      async () =>
        /^[1-9]/.test(squash(await page.locator('#tile-queue .value').textContent())) ||
        /^[1-9]/.test(squash(await page.locator('#tile-sse .sub').textContent())),
      'calls or chats to wait',
    );
    if (FOR_DOCS) await new Promise((resolve) => setTimeout(resolve, 7_000));
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'dashboard.png'), fullPage: true });

    page.on('dialog', (dialog) => void dialog.accept(dialog.type() === 'prompt' ? TOKEN : undefined));
    await page.click('#pause');
    await expectText(page, '#admin-result', /POST \/api\/queue\/pause: paused/);
    const paused = (await (await fetch(`${troupe.url}/api/queue/status`)).json()) as {
      queue: { paused: boolean };
    };
    expect(paused.queue.paused).toBe(true);
    await expectText(page, '#tile-queue .sub', /PAUSED/);
    await page.click('#resume');
    await expectText(page, '#admin-result', /POST \/api\/queue\/resume: running/);
    // Clear asks to confirm first (the handler accepts); the token is remembered for the tab.
    await page.click('#clear');
    await expectText(page, '#admin-result', /DELETE \/api\/queue\/clear: running, \d+ calls cleared/);
    await Promise.all(chats);
    expect((page as Page & { problems: string[] }).problems).toEqual([]);
    await page.close();
  });
});

/** An element's text as it reads: runs of white space (the HTML's line breaks) as one space, trimmed. */
function squash(text: string | null): string {
  return (text ?? '').replace(/\s+/g, ' ').trim();
}

/** Waits until the element's text matches (an exact string or a pattern); fails naming both. */
async function expectText(page: Page, selector: string, expected: string | RegExp): Promise<void> {
  const matches = (text: string) => (typeof expected === 'string' ? text === expected : expected.test(text));
  let last = '';
  await until(
    async () => {
      last = squash(await page.locator(selector).first().textContent());
      return matches(last);
    },
    () => `${selector} to read ${String(expected)} (last: ${JSON.stringify(last)})`,
  );
}

async function until(
  condition: () => Promise<boolean>,
  what: string | (() => string),
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline)
      throw new Error(`Timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

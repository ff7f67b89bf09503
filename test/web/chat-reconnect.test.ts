import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';

const CHROMIUM = '/usr/bin/chromium';
const describeBrowser = fs.existsSync(CHROMIUM) ? describe : describe.skip;

jest.setTimeout(120_000);

/**
 * The chat page across a restart (durable chats, one instance, no Redis): the server drains with a
 * chat running and starts again on the same port and DATA_DIR; the page shows "reconnecting…",
 * follows the run again with Last-Event-ID and reaches done, each agent's card once.
 */
describeBrowser('the chat page reconnects after its stream drops', () => {
  let context: BrowserContext;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-page-restart-'));
  const started: TestTroupe[] = [];

  beforeAll(async () => {
    context = await chromium.launchPersistentContext(path.join(root, 'chromium'), {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    });
  });
  afterAll(async () => {
    await context?.close();
    await Promise.all(started.map((troupe) => troupe.stop()));
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('a restart mid-chat: "reconnecting…", then the same chat to done', async () => {
    const env = {
      DATA_DIR: path.join(root, 'data'),
      SIM_LATENCY_MS: '20',
      SIM_TOKENS_PER_S: '150',
      AGENT_PARALLEL: 'off',
    };
    const first = await startTestTroupe({ ...env, SHUTDOWN_GRACE_MS: '200' });
    const page = await context.newPage();
    await page.goto(`${first.url}/`);
    await page.fill('#message', 'How should we plan a team offsite for 40 people?');
    await page.click('#send');
    await page.locator('.agent[data-agent="planner"] .agent-text:not(:empty)').waitFor({ timeout: 30_000 });
    await first.stop();
    await page.locator('#status', { hasText: 'reconnecting…' }).waitFor({ timeout: 10_000 });

    started.push(await startTestTroupe({ ...env, PORT: String(first.port) }));
    await page.locator('[data-testid="done"]').waitFor({ timeout: 60_000 });
    expect(await page.locator('#status').textContent()).toBe('done');
    expect(await page.locator('.agent[data-agent="host"]').count()).toBe(1);
    expect(await page.locator('.agent[data-agent="reporter"]').count()).toBe(1);
    expect(await page.locator('.turn .error').count()).toBe(0);
    await page.close();
  });
});

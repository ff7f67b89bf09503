import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';

/**
 * A thinking model on the chat page, in headless Chromium: each agent's reasoning sits folded in
 * its own <details> above the answer, and never in the answer's text. Skipped without Chromium.
 */
const CHROMIUM = '/usr/bin/chromium';
const describeBrowser = fs.existsSync(CHROMIUM) ? describe : describe.skip;

jest.setTimeout(120_000);

describeBrowser('the chat page with a thinking model', () => {
  let troupe: TestTroupe;
  let context: BrowserContext;
  let userDataDir: string;

  beforeAll(async () => {
    troupe = await startTestTroupe({
      LLM_THINKING: 'enabled',
      SIM_LATENCY_MS: '50',
      SIM_TOKENS_PER_S: '800',
    });
    userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    });
  });

  afterAll(async () => {
    await context?.close();
    await troupe?.stop();
    if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
  });

  test('each agent card folds its reasoning in a <details>, apart from the answer', async () => {
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(`${troupe.url}/`);
    await page.fill('#message', 'How should we plan a team offsite for 40 people?');
    await page.click('#send');
    await page.locator('[data-testid="done"]').waitFor({ timeout: 60_000 });
    if (process.env.DEBUG_PAGE) console.log(await page.locator('#turns').innerHTML());
    for (const agent of ['host', 'planner', 'critic', 'reporter']) {
      const card = page.locator(`.agent[data-agent="${agent}"]`).first();
      const details = card.locator('details.reasoning');
      // Folded: closed until the reader opens it.
      expect(await details.getAttribute('open')).toBeNull();
      expect(await details.locator('.reasoning-text').textContent()).toMatch(/Let me think/);
      const answer = (await card.locator('.agent-text').textContent()) ?? '';
      expect(answer.trim().length).toBeGreaterThan(10);
      expect(answer).not.toMatch(/Let me think/);
    }
    expect(problems).toEqual([]);
    await page.close();
  });
});

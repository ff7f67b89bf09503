import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';

/**
 * The chat box's keys, as chat apps have them: Enter sends, Shift+Enter adds a line, and the page
 * says so beside the box. Debian's Chromium through playwright-core; skipped (saying so) without it.
 */
const CHROMIUM = '/usr/bin/chromium';
const haveChromium = fs.existsSync(CHROMIUM);
const describeBrowser = haveChromium ? describe : describe.skip;

jest.setTimeout(120_000);

describeBrowser('the chat box: Enter sends, Shift+Enter adds a line', () => {
  let troupe: TestTroupe;
  let context: BrowserContext;
  let userDataDir: string;

  beforeAll(async () => {
    troupe = await startTestTroupe({ SIM_LATENCY_MS: '20', SIM_TOKENS_PER_S: '5000' });
    userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-chromium-keys-'));
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

  test('Shift+Enter keeps a newline in the box, Enter sends the message, and a hint says so', async () => {
    const page = await context.newPage();
    await page.goto(`${troupe.url}/`);
    await expect(page.locator('#message-hint').isVisible()).resolves.toBe(true);
    expect(await page.locator('#message-hint').textContent()).toMatch(/Enter sends.*Shift\+Enter/);

    const box = page.locator('#message');
    await box.click();
    await page.keyboard.type('first line');
    await page.keyboard.press('Shift+Enter');
    await page.keyboard.type('second line');
    // Nothing was sent: the box holds both lines and no turn appeared.
    expect(await box.inputValue()).toBe('first line\nsecond line');
    expect(await page.locator('[data-testid="done"]').count()).toBe(0);

    await page.keyboard.press('Enter');
    await page.locator('[data-testid="done"]').waitFor({ timeout: 60_000 });
    expect(await box.inputValue()).toBe('');
    // The sent message is the two lines as typed, stored in the conversation.
    const conversationId = await page.evaluate<string | null>(
      "sessionStorage.getItem('troupe.conversationId')",
    );
    const conversation = (await (
      await fetch(`${troupe.url}/api/conversations/${conversationId}`)
    ).json()) as {
      messages: { role: string; content: string }[];
    };
    expect(conversation.messages.find((message) => message.role === 'user')?.content).toBe(
      'first line\nsecond line',
    );
    await page.close();
  });
});

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { openSse } from '../helpers/sse-client';
import { startTestTroupe } from '../helpers/test-server';

/**
 * Durable chats without Redis: one instance on its embedded store. A chat still running when the
 * drain's grace ends is kept in DATA_DIR, and the next start on the same DATA_DIR continues it; the
 * client reconnects with Last-Event-ID and reads it to `done`.
 */
describe('durable chats on a single instance (no Redis)', () => {
  let dataDir: string;
  beforeEach(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-restart-'));
  });
  afterEach(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  test('a chat cut by the end of the grace goes on after the restart: every event once, then done; the turn stored whole', async () => {
    const env = { DATA_DIR: dataDir, SIM_LATENCY_MS: '20', SIM_TOKENS_PER_S: '150', AGENT_PARALLEL: 'off' };
    const first = await startTestTroupe({ ...env, SHUTDOWN_GRACE_MS: '200' });
    const stream = await openSse(`${first.url}/api/chat`, {
      body: { message: 'Plan a weekend of hiking near Geneva with a rest day in between' },
    });
    const { runId, conversationId } = (await stream.waitFor((event) => event.event === 'run')).data;
    await stream.waitFor((event) => event.event === 'agent_end');
    await stream.waitFor((event) => event.event === 'delta' && event.data.agent !== 'host');
    await first.stop();
    await stream.ended;
    // Cut mid-step, without a terminal event: the client is to reconnect.
    expect(stream.events.some((event) => event.event === 'done' || event.event === 'error')).toBe(false);
    expect(fs.readdirSync(path.join(dataDir, 'handover'))).toEqual([`${runId}.json`]);

    const second = await startTestTroupe(env);
    try {
      const resumed = await openSse(`${second.url}/api/runs/${runId}/events`, {
        headers: { 'Last-Event-ID': stream.events.at(-1)!.id! },
      });
      expect(resumed.status).toBe(200);
      await resumed.ended;
      const events = [...stream.events, ...resumed.events];
      expect(events.map((event) => Number(event.id))).toEqual(events.map((_, index) => index + 1));
      expect(events.at(-1)?.event).toBe('done');
      // What the client read of each agent equals what was stored: no step shown twice.
      const shown: string[] = [];
      for (const event of events) {
        if (event.event === 'agent_start') shown.push('');
        if (event.event === 'delta') shown[shown.length - 1] += event.data.text;
      }
      const stored = await request(second.url).get(`/api/conversations/${conversationId}`);
      const messages = stored.body.messages as Array<{ role: string; content: string }>;
      expect(messages.filter((message) => message.role === 'user')).toHaveLength(1);
      expect(shown).toEqual(
        messages.filter((message) => message.role !== 'user').map((message) => message.content),
      );
      expect(fs.readdirSync(path.join(dataDir, 'handover'))).toEqual([]);
    } finally {
      await second.stop();
    }
  }, 30_000);
});

import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { openSse } from '../helpers/sse-client';

const repositoryRoot = path.join(__dirname, '../..');

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * The documented command, as PM2, systemd and Docker run it: SIGTERM goes to the `npm start`
 * process, not to node. It must drain exactly as SIGTERM to node does, and leave no orphan.
 */
describe('SIGTERM to `npm start`', () => {
  jest.setTimeout(240_000);

  test('readiness fails, a short chat finishes, a long one ends with shutting_down, npm exits 0, no orphan', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-npm-start-'));
    const npm = spawn('npm', ['start'], {
      cwd: repositoryRoot,
      env: {
        ...process.env,
        PORT: '0',
        HOST: '127.0.0.1',
        DATA_DIR: dataDir,
        SIM_LATENCY_MS: '2000',
        SIM_TOKENS_PER_S: '2000',
        SHUTDOWN_GRACE_MS: '6000',
        LOG_LEVEL: 'warn',
        // The long chat would be handed over for the next start instead (test/durable/).
        DURABLE_CHATS: 'off',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    npm.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const npmExit = new Promise<number | null>((resolve) => npm.once('exit', (code) => resolve(code)));
    let nodePid: number | undefined;
    try {
      // `npm start` builds first when dist/ is missing or stale (prestart): that can take a while.
      const url = await new Promise<string>((resolve, reject) => {
        npm.stdout.on('data', (chunk: Buffer) => {
          output += chunk.toString();
          const match = /ready at (http:\/\/\S+)/.exec(output);
          if (match) resolve(match[1]);
        });
        npm.once('exit', (code) => reject(new Error(`npm start exited early with ${code}: ${output}`)));
      });
      const children = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(npm.pid)], {
        encoding: 'utf8',
      });
      // The start script execs node: it is npm's own child, with no shell in between to lose the signal.
      const nodeLine = children.split('\n').find((line) => line.includes('dist/server.js'));
      expect(nodeLine).toBeDefined();
      nodePid = Number(nodeLine!.trim().split(/\s+/)[0]);

      const short = await openSse(`${url}/api/chat`, { body: { message: 'a short one', mode: 'single' } });
      const long = await openSse(`${url}/api/chat`, { body: { message: 'a long one', mode: 'multi_agent' } });
      await short.waitFor((event) => event.event === 'agent_start');
      await long.waitFor((event) => event.event === 'agent_start');
      await request(url).get('/api/health').expect(200);

      npm.kill('SIGTERM');
      // Readiness fails at once, while the server still answers.
      await waitUntil(async () => (await request(url).get('/api/health')).status === 503);
      const refused = await request(url)
        .post('/api/chat')
        .set('Accept', 'application/json')
        .send({ message: 'late' });
      expect(refused.status).toBe(503);
      expect(refused.body.error.code).toBe('shutting_down');

      await short.ended;
      await long.ended;
      expect(short.events.at(-1)?.event).toBe('done');
      expect(long.events.at(-1)).toMatchObject({ event: 'error', data: { code: 'shutting_down' } });
      expect(await npmExit).toBe(0);
      await waitUntil(async () => !isAlive(nodePid!));
    } finally {
      npm.kill('SIGKILL');
      if (nodePid !== undefined && isAlive(nodePid)) process.kill(nodePid, 'SIGKILL');
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

async function waitUntil(condition: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

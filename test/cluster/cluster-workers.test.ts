import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { waitUntil } from '../streaming/wait-until';

const ROOT = path.resolve(__dirname, '..', '..');

/** `server.ts --workers 2` as `npm start -- --workers 2` runs it (through tsx rather than a build). */
describe('npm start -- --workers N (node:cluster)', () => {
  let child: ChildProcess | undefined;
  let dataDir: string;
  afterEach(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('N workers serve one port; a worker that dies is replaced; SIGTERM drains them all and the primary exits 0', async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-cluster-'));
    child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'server.ts'), '--workers', '2'], {
      cwd: ROOT,
      env: {
        ...process.env,
        // Port 0: the primary hands every worker the same free port (no window between finding a free
        // port and listening on it, in which another test's server could take it).
        PORT: '0',
        HOST: '127.0.0.1',
        DATA_DIR: dataDir,
        LOG_LEVEL: 'warn',
        SIM_LATENCY_MS: '5',
        REDIS_URL: '',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
    const ready = () => stdout.match(/Troupe is ready at/g)?.length ?? 0;

    await waitUntil(() => ready() >= 2, 120_000);
    const port = Number(/Troupe is ready at http:\/\/127\.0\.0\.1:(\d+)/.exec(stdout)?.[1]);
    expect(stderr).toMatch(/2 workers without REDIS_URL/);
    const response = await fetch(`http://127.0.0.1:${port}/api/sse/status`);
    expect(response.status).toBe(200);

    const pids = [...stdout.matchAll(/worker (\d+) online/g)].map((match) => Number(match[1]));
    // stdout and stderr come with a failure: a worker that died early says why there.
    expect({ workers: new Set(pids).size, stdout, stderr }).toMatchObject({ workers: 2 });
    process.kill(pids[0], 'SIGKILL');
    await waitUntil(() => /worker \d+ died/.test(stdout) && ready() >= 3, 120_000);

    child.kill('SIGTERM');
    await expect(exited).resolves.toBe(0);
    expect(stdout).toMatch(/SIGTERM: draining 2 workers/);
  }, 300_000);
});

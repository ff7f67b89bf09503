import { execFileSync, spawn } from 'node:child_process';
import path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * `npm run sim-llm` as a person or a supervisor runs it: SIGTERM goes to the npm process. The
 * simulator must stop listening and npm must exit, with no child left behind still holding the port.
 */
describe('npm run sim-llm', () => {
  jest.setTimeout(60_000);

  test('SIGTERM to npm stops the simulator: npm exits, the port closes, no orphan', async () => {
    const npm = spawn('npm', ['run', 'sim-llm', '--', '--port', '0'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    npm.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => npm.once('exit', (code) => resolve(code)));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        npm.stdout.on('data', (chunk: Buffer) => {
          output += chunk.toString();
          const match = /sim-llm listening on (http:\/\/\S+)/.exec(output);
          if (match) resolve(match[1]);
        });
        npm.once('exit', (code) => reject(new Error(`sim-llm exited early with ${code}: ${output}`)));
      });
      // The simulator runs in npm's own child (the script execs node): the pid that holds the port.
      const stats = await fetch(`${url}/sim/stats`);
      expect(stats.status).toBe(200);
      const children = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(npm.pid)], {
        encoding: 'utf8',
      });
      const simLine = children.split('\n').find((line) => line.includes('scripts/sim-llm.ts'));
      expect(simLine).toBeDefined();
      const simPid = Number(simLine!.trim().split(/\s+/)[0]);

      npm.kill('SIGTERM');
      await exited;
      await waitUntil(() => !isAlive(simPid));
      await expect(fetch(`${url}/sim/stats`)).rejects.toThrow();
    } finally {
      npm.kill('SIGKILL');
    }
  });
});

async function waitUntil(condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

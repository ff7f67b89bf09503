import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SqliteStore } from '../../api/store/sqlite-store';

const repositoryRoot = path.join(__dirname, '../..');

function writer(directory: string, name: string, count: number): Promise<void> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'test/store/fixtures/shared-writer.ts', directory, name, String(count)],
    { cwd: repositoryRoot, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve, reject) =>
    child.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`${name} exited ${code}: ${output}`)),
    ),
  );
}

/**
 * Several processes on one DATA_DIR, on one host (`npm start -- --workers N`, or several
 * `npm start` on one machine): SQLite in WAL mode serialises their writes through its file locks
 * (busy_timeout waits for the lock), so every append lands once, with its own sequence number,
 * and every process reads the others' conversations.
 */
describe('SqliteStore: several processes on one DATA_DIR', () => {
  jest.setTimeout(120_000);
  let directory: string;
  beforeEach(() => {
    directory = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-shared-store-'));
  });
  afterEach(() => fs.rmSync(directory, { recursive: true, force: true }));

  test('three writer processes and this one append at once: nothing lost, sequence numbers unique', async () => {
    const count = 60;
    const local = new SqliteStore({ directory });
    await local.init();
    await local.ensureConversation('shared', 'everyone');
    const writers = ['a', 'b', 'c'].map((name) => writer(directory, name, count));
    const localWrites: Promise<unknown>[] = [];
    for (let index = 0; index < count; index++) {
      localWrites.push(
        local.appendMessages([{ conversationId: 'shared', role: 'user', content: `local-${index}` }]),
      );
      if (index % 10 === 9) await Promise.all(localWrites.splice(0));
    }
    await Promise.all([...writers, ...localWrites]);

    const shared = await local.listMessages('shared');
    expect(shared).toHaveLength(4 * count);
    expect(new Set(shared.map((message) => message.content)).size).toBe(4 * count);
    for (const name of ['a', 'b', 'c']) {
      // Each process's own conversation, written there, is read here, in its order.
      const own = await local.listMessages(`own-${name}`);
      expect(own.map((message) => message.content)).toEqual(
        Array.from({ length: count }, (_, index) => `${index}`),
      );
    }
    await local.close();
  });
});

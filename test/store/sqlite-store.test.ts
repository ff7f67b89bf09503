import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StoreStateError, StoreUnavailableError } from '../../api/store/documents';
import { SqliteStore } from '../../api/store/sqlite-store';
import type { Store } from '../../api/store/store';
import { describeStoreBehaviour } from './store-behaviour';

const directories = new Map<Store, string>();
const repositoryRoot = path.join(__dirname, '../..');

async function temporaryDirectory(): Promise<string> {
  return fs.promises.mkdtemp(path.join(os.tmpdir(), 'troupe-store-'));
}

async function removeDirectory(directory: string): Promise<void> {
  await fs.promises.rm(directory, { recursive: true, force: true });
}

describe('SqliteStore (behaviour suite)', () => {
  describeStoreBehaviour({
    async create({ clock }) {
      const directory = await temporaryDirectory();
      const store = new SqliteStore({ directory, clock });
      await store.init();
      directories.set(store, directory);
      return store;
    },
    async destroy(store) {
      await store.close();
      await removeDirectory(directories.get(store)!);
      directories.delete(store);
    },
  });
});

describe('SqliteStore (adapter)', () => {
  let root: string;

  beforeEach(async () => {
    root = await temporaryDirectory();
  });

  afterEach(async () => {
    await removeDirectory(root);
  });

  test('creates a missing data directory holding troupe.sqlite in WAL mode; close() folds the WAL back', async () => {
    const directory = path.join(root, 'nested', 'data');
    const store = new SqliteStore({ directory });
    await store.init();
    await store.ensureConversation('c-1', 'alice');
    expect(fs.readdirSync(directory).sort()).toEqual([
      'troupe.sqlite',
      'troupe.sqlite-shm',
      'troupe.sqlite-wal',
    ]);
    await store.close();
    expect(fs.readdirSync(directory)).toEqual(['troupe.sqlite']);
  });

  test('a new instance on the same directory sees everything, and appends continue in order', async () => {
    const first = new SqliteStore({ directory: root });
    await first.init();
    const conversation = await first.ensureConversation('c-1', 'alice');
    const written = await first.appendMessages([
      { conversationId: 'c-1', role: 'user', content: 'hello' },
      {
        conversationId: 'c-1',
        role: 'agent',
        agent: 'critic',
        content: 'APPROVED',
        usage: { promptTokens: 10, completionTokens: 2 },
        timings: { waitMs: 1, processMs: 2 },
      },
    ]);
    await first.close();

    const second = new SqliteStore({ directory: root });
    await second.init();
    expect(await second.getConversation('c-1')).toEqual({ ...conversation, updatedAt: expect.any(String) });
    expect(await second.listMessages('c-1')).toEqual(written);
    await second.appendMessages([{ conversationId: 'c-1', role: 'assistant', content: 'after restart' }]);
    expect((await second.listMessages('c-1')).map((message) => message.content)).toEqual([
      'hello',
      'APPROVED',
      'after restart',
    ]);
    await second.close();
  });

  test('an append that fails part-way stores nothing (one transaction)', async () => {
    const store = new SqliteStore({ directory: root });
    await store.init();
    await store.ensureConversation('c-1', 'alice');
    await store.appendMessages([{ conversationId: 'c-1', role: 'user', content: 'first', id: 'dup' }]);
    await expect(
      store.appendMessages([
        { conversationId: 'c-1', role: 'user', content: 'second' },
        { conversationId: 'c-1', role: 'user', content: 'clash', id: 'dup' },
      ]),
    ).rejects.toMatchObject({ code: 'SQLITE_CONSTRAINT_UNIQUE' });
    await expect(
      store.appendMessages([
        { conversationId: 'c-1', role: 'user', content: 'third' },
        { conversationId: 'missing', role: 'user', content: 'orphan' },
      ]),
    ).rejects.toMatchObject({ code: 'not_found' });
    expect((await store.listMessages('c-1')).map((message) => message.content)).toEqual(['first']);
    // The sequence reservation rolled back too: the next append follows directly.
    await store.appendMessages([{ conversationId: 'c-1', role: 'user', content: 'next' }]);
    expect((await store.listMessages('c-1')).map((message) => message.content)).toEqual(['first', 'next']);
    await store.close();
  });

  test('a killed writer loses nothing committed, and a torn last WAL write only loses that write', async () => {
    const count = 20;
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'test/store/fixtures/crash-writer.ts', root, String(count)],
      { cwd: repositoryRoot, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const exited = new Promise((resolve) => child.once('exit', resolve));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('written')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`writer exited with ${code}`)));
    });
    child.kill('SIGKILL');
    await exited;

    // Tear the last frame of the write-ahead log, as a crash in the middle of a write would.
    const wal = path.join(root, 'troupe.sqlite-wal');
    const size = fs.statSync(wal).size;
    expect(size).toBeGreaterThan(0);
    fs.truncateSync(wal, size - 100);

    const restarted = new SqliteStore({ directory: root });
    await restarted.init();
    const contents = (await restarted.listMessages('c-1')).map((message) => message.content);
    expect(contents).toEqual(Array.from({ length: count - 1 }, (_, index) => `m${index}`));
    await restarted.appendMessages([{ conversationId: 'c-1', role: 'user', content: 'after crash' }]);
    expect((await restarted.listMessages('c-1')).at(-1)?.content).toBe('after crash');
    await restarted.close();
  });

  test('opens a version-1 file (before messages.reasoning) and migrates it, keeping its messages', async () => {
    const Database = (await import('better-sqlite3')).default;
    const directory = path.join(root, 'v1');
    fs.mkdirSync(directory);
    const old = new Database(path.join(directory, 'troupe.sqlite'));
    old.exec(`
      CREATE TABLE conversations (id TEXT PRIMARY KEY NOT NULL, user_id TEXT NOT NULL, created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL, last_seq INTEGER NOT NULL DEFAULT 0);
      CREATE TABLE messages (conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL, id TEXT NOT NULL UNIQUE, role TEXT NOT NULL, agent TEXT, content TEXT NOT NULL,
        created_at TEXT NOT NULL, usage TEXT, timings TEXT, run_id TEXT, PRIMARY KEY (conversation_id, seq));
      INSERT INTO conversations VALUES ('c-1', 'alice', '2025-01-01', '2025-01-01', 1);
      INSERT INTO messages (conversation_id, seq, id, role, content, created_at) VALUES ('c-1', 1, 'm-1', 'user', 'hello', '2025-01-01');
    `);
    old.pragma('user_version = 1');
    old.close();
    const store = new SqliteStore({ directory });
    await store.init();
    expect((await store.listMessages('c-1')).map((message) => message.content)).toEqual(['hello']);
    await store.appendMessages([
      { conversationId: 'c-1', role: 'assistant', content: 'hi', reasoning: 'greet back' },
    ]);
    expect((await store.listMessages('c-1'))[1]).toMatchObject({ content: 'hi', reasoning: 'greet back' });
    await store.close();
  });

  test('rejects use before init() and after close() with StoreStateError', async () => {
    const store = new SqliteStore({ directory: root });
    await expect(store.getConversation('x')).rejects.toBeInstanceOf(StoreStateError);
    await store.init();
    await store.close();
    await expect(store.listMessages('x')).rejects.toThrow(/closed/);
    await expect(store.ping()).rejects.toBeInstanceOf(StoreStateError);
    await expect(store.init()).rejects.toBeInstanceOf(StoreStateError);
    await expect(store.close()).resolves.toBeUndefined();
  });

  test('init() fails clearly when the directory cannot be created', async () => {
    const blocker = path.join(root, 'a-file');
    fs.writeFileSync(blocker, 'not a directory');
    const store = new SqliteStore({ directory: path.join(blocker, 'data') });
    const failure = store.init();
    await expect(failure).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(failure).rejects.toThrow(/could not open .*a-file/);
    await store.close();
  });

  test('init() refuses a file that is not a database, naming it', async () => {
    fs.writeFileSync(path.join(root, 'troupe.sqlite'), 'garbage '.repeat(1000));
    const store = new SqliteStore({ directory: root });
    await expect(store.init()).rejects.toThrow(/could not open .*troupe\.sqlite/);
    await store.close();
  });

  test('ping rejects when the data directory is gone', async () => {
    const directory = path.join(root, 'data');
    const store = new SqliteStore({ directory });
    await store.init();
    await removeDirectory(directory);
    await expect(store.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
    await fs.promises.mkdir(directory);
    await store.close();
  });
});

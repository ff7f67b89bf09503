import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ManualClock, flushMicrotasks } from '../../api/clock';
import { StoreStateError, StoreUnavailableError } from '../../api/store/documents';
import { EmbeddedStore } from '../../api/store/embedded-store';
import type { Store } from '../../api/store/store';
import { describeStoreBehaviour } from './store-behaviour';

const directories = new Map<Store, string>();

async function temporaryDirectory(): Promise<string> {
  return fs.promises.mkdtemp(path.join(os.tmpdir(), 'troupe-store-'));
}

async function removeDirectory(directory: string): Promise<void> {
  await fs.promises.rm(directory, { recursive: true, force: true });
}

/** Lines of a data file that hold the document with this `id` (nedb appends one per write). */
function linesFor(file: string, id: string): number {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.includes(`"id":"${id}"`)).length;
}

describe('EmbeddedStore (behaviour suite)', () => {
  describeStoreBehaviour({
    async create({ clock }) {
      const directory = await temporaryDirectory();
      const store = new EmbeddedStore({ directory, clock });
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

describe('EmbeddedStore (adapter)', () => {
  let root: string;

  beforeEach(async () => {
    root = await temporaryDirectory();
  });

  afterEach(async () => {
    await removeDirectory(root);
  });

  test('creates a missing data directory with conversations.db and messages.db', async () => {
    const directory = path.join(root, 'nested', 'data');
    const store = new EmbeddedStore({ directory });
    await store.init();
    await store.close();
    expect(fs.readdirSync(directory).sort()).toEqual(['conversations.db', 'messages.db']);
  });

  test('a new instance on the same directory sees everything, and appends continue in order', async () => {
    const first = new EmbeddedStore({ directory: root });
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

    const second = new EmbeddedStore({ directory: root });
    await second.init();
    expect(await second.getConversation('c-1')).toEqual({
      ...conversation,
      updatedAt: expect.any(String),
    });
    expect(await second.listMessages('c-1')).toEqual(written);
    // The sequence counter survived too: new messages land after the old ones.
    await second.appendMessages([{ conversationId: 'c-1', role: 'assistant', content: 'after restart' }]);
    expect((await second.listMessages('c-1')).map((message) => message.content)).toEqual([
      'hello',
      'APPROVED',
      'after restart',
    ]);
    await second.close();
  });

  test('data written without close() (a crash) is still there after a restart', async () => {
    const crashed = new EmbeddedStore({ directory: root, compactionIntervalMs: 0 });
    await crashed.init();
    await crashed.ensureConversation('c-1', 'alice');
    await crashed.appendMessages([{ conversationId: 'c-1', role: 'user', content: 'unflushed?' }]);
    // No close: nedb has appended every write to the file already.
    const restarted = new EmbeddedStore({ directory: root });
    await restarted.init();
    expect((await restarted.listMessages('c-1')).map((message) => message.content)).toEqual(['unflushed?']);
    await restarted.close();
  });

  test('close() compacts the files to one line per document', async () => {
    const store = new EmbeddedStore({ directory: root, compactionIntervalMs: 0 });
    await store.init();
    await store.ensureConversation('c-1', 'alice');
    for (let turn = 0; turn < 5; turn++) {
      await store.appendMessages([{ conversationId: 'c-1', role: 'user', content: `m${turn}` }]);
    }
    const file = path.join(root, 'conversations.db');
    expect(linesFor(file, 'c-1')).toBe(6); // the insert and five sequence updates
    await store.close();
    expect(linesFor(file, 'c-1')).toBe(1);
  });

  test('periodic compaction runs on the clock, only after writes', async () => {
    const clock = new ManualClock();
    const errors: unknown[] = [];
    const store = new EmbeddedStore({
      directory: root,
      clock,
      compactionIntervalMs: 60_000,
      onCompactionError: (error) => errors.push(error),
    });
    await store.init();
    await store.ensureConversation('c-1', 'alice');
    for (let turn = 0; turn < 3; turn++) {
      await store.appendMessages([{ conversationId: 'c-1', role: 'user', content: `m${turn}` }]);
    }
    const file = path.join(root, 'conversations.db');
    expect(linesFor(file, 'c-1')).toBe(4);
    clock.advance(59_999);
    await store.ping();
    expect(linesFor(file, 'c-1')).toBe(4);
    clock.advance(1);
    // ping queues behind the compaction in nedb's executor, so once it answers the file is rewritten.
    await store.ping();
    expect(linesFor(file, 'c-1')).toBe(1);
    await store.listMessages('c-1'); // likewise behind the messages file's compaction
    await flushMicrotasks();
    expect(clock.pendingTimers()).toBe(1); // re-armed for the next period
    expect(errors).toEqual([]);
    await store.close();
    expect(clock.pendingTimers()).toBe(0);
  });

  test('rejects use before init() and after close() with StoreStateError', async () => {
    const store = new EmbeddedStore({ directory: root });
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
    const store = new EmbeddedStore({ directory: path.join(blocker, 'data') });
    const failure = store.init();
    await expect(failure).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(failure).rejects.toThrow(/could not open .*a-file/);
    await store.close();
  });

  test('ping rejects when the data directory is gone', async () => {
    const directory = path.join(root, 'data');
    const store = new EmbeddedStore({ directory });
    await store.init();
    await removeDirectory(directory);
    await expect(store.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
    await fs.promises.mkdir(directory);
    await store.close();
  });
});

import { randomUUID } from 'node:crypto';
import { MongoClient } from 'mongodb';
import { StoreStateError, StoreUnavailableError } from '../../api/store/documents';
import { MongoStore, redact } from '../../api/store/mongo-store';
import { describeStoreBehaviour } from './store-behaviour';

/**
 * The behaviour suite against a real MongoDB server: runs only when MONGODB_URI points at one
 * (none can be installed on the machines here), and otherwise shows up as skipped, never passed.
 * Each test gets its own database, dropped afterwards.
 */
const uri = process.env.MONGODB_URI;
const describeWithMongo = uri ? describe : describe.skip;

describeWithMongo(
  uri ? 'MongoDB store (behaviour suite)' : 'MongoDB store (skipped: set MONGODB_URI to run)',
  () => {
    const databases = new Map<MongoStore, string>();

    describeStoreBehaviour({
      async create({ clock }) {
        const databaseName = `troupe_test_${randomUUID().replace(/-/g, '')}`;
        const store = new MongoStore({ uri: uri!, maxPoolSize: 10, minPoolSize: 0, databaseName, clock });
        await store.init();
        databases.set(store, databaseName);
        return store;
      },
      async destroy(store) {
        await store.close();
        const client = new MongoClient(uri!);
        try {
          await client.db(databases.get(store as MongoStore)).dropDatabase();
        } finally {
          await client.close();
        }
        databases.delete(store as MongoStore);
      },
    });
  },
);

describe('MongoStore without a server', () => {
  test('init() against an unreachable server rejects with a clear, password-free error', async () => {
    const store = new MongoStore({
      uri: 'mongodb://troupe:s3cret@127.0.0.1:1/troupe?serverSelectionTimeoutMS=500',
      maxPoolSize: 5,
      minPoolSize: 2,
    });
    const started = Date.now();
    const failure = store.init();
    await expect(failure).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(failure).rejects.toThrow(
      /MongoDB at mongodb:\/\/troupe:\*\*\*@127\.0\.0\.1:1\/troupe.* is unreachable/,
    );
    await expect(failure).rejects.not.toThrow(/s3cret/);
    // The URI's serverSelectionTimeoutMS governs, not the 5 s default.
    expect(Date.now() - started).toBeLessThan(4000);
    await expect(store.ping()).rejects.toBeInstanceOf(StoreStateError);
    await store.close();
  });

  test('the default server-selection timeout is short when the URI sets none', async () => {
    const store = new MongoStore({
      uri: 'mongodb://127.0.0.1:1',
      maxPoolSize: 5,
      minPoolSize: 0,
      serverSelectionTimeoutMs: 300,
    });
    await expect(store.init()).rejects.toThrow(/MongoDB at mongodb:\/\/127\.0\.0\.1:1 is unreachable/);
    await store.close();
  });

  test('an invalid connection string fails init() with a clear error', async () => {
    const store = new MongoStore({ uri: 'postgres://nope', maxPoolSize: 5, minPoolSize: 0 });
    await expect(store.init()).rejects.toThrow(/not a valid connection string/);
    await store.close();
  });

  test('operations before init() reject with StoreStateError', async () => {
    const store = new MongoStore({ uri: 'mongodb://127.0.0.1:1', maxPoolSize: 5, minPoolSize: 0 });
    await expect(store.getConversation('x')).rejects.toBeInstanceOf(StoreStateError);
    await expect(
      store.appendMessages([{ conversationId: 'x', role: 'user', content: 'hi' }]),
    ).rejects.toThrow(/not initialised/);
    await store.close();
  });

  test('redact hides passwords in connection strings', () => {
    expect(redact('mongodb+srv://user:p%40ss@cluster.example.net/db')).toBe(
      'mongodb+srv://user:***@cluster.example.net/db',
    );
    expect(redact('mongodb://host:27017/db')).toBe('mongodb://host:27017/db');
  });
});

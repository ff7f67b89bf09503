import os from 'node:os';
import path from 'node:path';
import { testConfig } from '../../config';
import { createStore } from '../../api/store/create-store';
import { SqliteStore } from '../../api/store/sqlite-store';
import { MongoStore } from '../../api/store/mongo-store';

describe('createStore', () => {
  test('embedded under DATA_DIR when MONGODB_URI is unset', () => {
    const dataDir = path.join(os.tmpdir(), 'troupe-create-store');
    expect(createStore(testConfig({ DATA_DIR: dataDir }))).toBeInstanceOf(SqliteStore);
  });

  test('MongoDB when MONGODB_URI is set (nothing connects before init)', async () => {
    const store = createStore(testConfig({ MONGODB_URI: 'mongodb://127.0.0.1:1/troupe' }));
    expect(store).toBeInstanceOf(MongoStore);
    await store.close();
  });

  test('the MongoDB driver is loaded only when MONGODB_URI is set (it is ~9 MB of RSS)', () => {
    const loaded: string[] = [];
    jest.isolateModules(() => {
      jest.doMock('mongodb', () => {
        loaded.push('mongodb');
        return jest.requireActual('mongodb');
      });
      type Module = typeof import('../../api/store/create-store');
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const isolated = require('../../api/store/create-store') as Module;
      isolated.createStore(testConfig({ DATA_DIR: path.join(os.tmpdir(), 'troupe-create-store') }));
      expect(loaded).toEqual([]);
      isolated.createStore(testConfig({ MONGODB_URI: 'mongodb://127.0.0.1:1/troupe' }));
      expect(loaded.length).toBeGreaterThan(0);
    });
  });
});

import type { Config } from '../../config';
import type { Clock } from '../clock';
import { SqliteStore } from './sqlite-store';
import type { Store } from './store';

/**
 * The store the configuration asks for: MongoDB when MONGODB_URI is set, else the embedded SQLite
 * database under DATA_DIR. Not yet initialised: the caller awaits `init()` at start and `close()` at shutdown.
 */
export function createStore(
  config: Pick<Config, 'dataDir' | 'mongo'>,
  options: { clock?: Clock } = {},
): Store {
  if (config.mongo.uri) {
    // Loaded only when asked for: the MongoDB driver is ~9 MB of RSS (5 MB of heap) in a process
    // that stores in SQLite and never calls it (measured at rest, docs/BENCHMARKS.md).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { MongoStore } = require('./mongo-store') as typeof import('./mongo-store');
    return new MongoStore({
      uri: config.mongo.uri,
      maxPoolSize: config.mongo.maxPoolSize,
      minPoolSize: config.mongo.minPoolSize,
      clock: options.clock,
    });
  }
  return new SqliteStore({ directory: config.dataDir, clock: options.clock });
}

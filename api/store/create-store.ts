import type { Config } from '../../config';
import type { Clock } from '../clock';
import { MongoStore } from './mongo-store';
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
    return new MongoStore({
      uri: config.mongo.uri,
      maxPoolSize: config.mongo.maxPoolSize,
      minPoolSize: config.mongo.minPoolSize,
      clock: options.clock,
    });
  }
  return new SqliteStore({ directory: config.dataDir, clock: options.clock });
}

import type { Config } from '../../config';
import type { Clock } from '../clock';
import type { AnyToolPlugin } from './tool-plugin';
import type { ToolRateLimiter } from './tool-rate-limiter';
import { OfflineSearch } from './plugins/search-backends/offline-search';
import { searchWebFromConfig } from './plugins/search-web';
import type { ToolCache } from './tool-cache';
import { ToolExecutor, type ToolLogger } from './tool-executor';

export interface ToolSystemDependencies {
  clock?: Clock;
  logger?: ToolLogger;
  /** Result cache (default: in-process LRU); a Redis cache goes here when REDIS_URL is set. */
  cache?: ToolCache;
  /** Builds each tool's limiter (default: in-memory); shared through Redis when REDIS_URL is set. */
  createRateLimiter?: (plugin: AnyToolPlugin, clock: Clock) => ToolRateLimiter;
  /** For the SearXNG backend (default: global fetch). */
  fetch?: typeof fetch;
  /** The offline corpus backend (default: the bundled corpus, indexed on first use). */
  offlineSearch?: OfflineSearch;
}

/** The tool system as the composition root builds it: an executor with every built-in tool. */
export function createToolSystem(config: Config, dependencies: ToolSystemDependencies = {}): ToolExecutor {
  const executor = new ToolExecutor({
    clock: dependencies.clock,
    logger: dependencies.logger,
    cache: dependencies.cache,
    createRateLimiter: dependencies.createRateLimiter,
  });
  executor.register(
    searchWebFromConfig(config.search, { fetch: dependencies.fetch, offline: dependencies.offlineSearch }),
  );
  return executor;
}

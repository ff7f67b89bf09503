import path from 'node:path';
import type { Config } from '../../config';
import type { Clock } from '../clock';
import type { Logger } from '../logger';
import type { SharedState } from '../redis/shared-state';
import { FileRunCheckpoints } from '../store/file-run-checkpoints';
import { RedisRunCheckpoints } from '../streaming/redis/redis-run-checkpoints';
import { DurableRuns } from './durable-runs';

/**
 * Durable chats as the config asks (DURABLE_CHATS), for the composition root: with Redis, the
 * checkpoints and ownership live there and any live instance adopts; without, a drain keeps the
 * unfinished runs in DATA_DIR for this instance's next start. Undefined when turned off.
 */
export function createDurableRuns(
  config: Pick<Config, 'durableChats' | 'dataDir'>,
  deps: { shared?: SharedState; clock: Clock; logger: Logger },
): DurableRuns | undefined {
  if (!config.durableChats.enabled) return undefined;
  const { shared } = deps;
  return new DurableRuns({
    checkpoints: shared
      ? new RedisRunCheckpoints({
          // The run event log's connection: a checkpoint is ordered after the events it covers.
          client: shared.runLogClient,
          keyPrefix: shared.keyPrefix,
          instanceId: shared.instanceId,
        })
      : new FileRunCheckpoints(path.join(config.dataDir, 'handover')),
    // Who is alive: the instance presence in Redis (a small window onto the registry); alone, nobody else.
    liveness: shared?.presence ?? { isAlive: async () => false, instanceCount: () => 1 },
    instanceId: shared?.instanceId ?? 'local',
    clock: deps.clock,
    logger: deps.logger,
    adoptIntervalMs: config.durableChats.adoptIntervalMs,
  });
}

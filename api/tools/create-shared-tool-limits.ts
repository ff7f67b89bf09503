import type { Redis } from 'ioredis';
import type { Clock } from '../clock';
import { RedisToolRateLimiter } from './redis-tool-rate-limiter';
import type { ToolLogger } from './tool-executor';
import type { AnyToolPlugin } from './tool-plugin';
import { InMemoryToolRateLimiter, type ToolPermit, type ToolRateLimiter } from './tool-rate-limiter';

/** A permit never released (its instance killed) frees its slot this long after the tool's timeout. */
const LEASE_MARGIN_MS = 5000;

/**
 * The executor's `createRateLimiter` with REDIS_URL: each tool's limits shared through Redis, and
 * for a Redis outage a local limiter at this instance's share (1/N of each limit, N the instances
 * alive when Redis was last reached) — built at the first failure, when N is known.
 */
export function sharedToolLimits(deps: {
  client: Redis;
  keyPrefix: string;
  logger?: ToolLogger;
  instanceCount: () => number;
}): (plugin: AnyToolPlugin, clock: Clock) => ToolRateLimiter {
  return (plugin, clock) => {
    const { maxConcurrent, maxPerMinute, maxWaitMs, timeout } = plugin.policy.rateLimit;
    const fallback = lazyLimiter(() => {
      const instances = Math.max(1, deps.instanceCount());
      return new InMemoryToolRateLimiter({
        tool: plugin.name,
        maxConcurrent: Math.max(1, Math.floor(maxConcurrent / instances)),
        maxPerMinute: Math.max(1, Math.floor(maxPerMinute / instances)),
        maxWaitMs,
        clock,
      });
    });
    return new RedisToolRateLimiter({
      client: deps.client,
      keyPrefix: deps.keyPrefix,
      tool: plugin.name,
      maxConcurrent,
      maxPerMinute,
      maxWaitMs,
      leaseMs: timeout + LEASE_MARGIN_MS,
      fallback,
      clock,
      logger: deps.logger,
    });
  };
}

function lazyLimiter(build: () => ToolRateLimiter): ToolRateLimiter {
  let limiter: ToolRateLimiter | undefined;
  return {
    acquire(signal: AbortSignal): Promise<ToolPermit> {
      limiter ??= build();
      return limiter.acquire(signal);
    },
    snapshot() {
      return (
        limiter?.snapshot() ?? {
          active: 0,
          waiting: 0,
          startedInWindow: 0,
          maxConcurrent: 0,
          maxPerMinute: 0,
        }
      );
    },
  };
}

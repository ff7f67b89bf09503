import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { ToolCache } from './tool-cache';
import type { ToolLogger } from './tool-executor';

/**
 * Tool results in Redis, shared by every instance: `SET <prefix>cache:tool:<sha256 of the key> <content>
 * PX <ttl>`. The key holds the call's arguments — a search query is the user's own words — so the
 * key name carries only their hash: whoever can list Redis keys learns nothing of what users asked.
 * (The value still holds the tool's result; Redis's ACLs guard values.) While
 * Redis fails, reads and writes go to the local fallback cache (logged once, and once when Redis
 * answers again), so an outage costs hit rate on other instances, never a call.
 */
export class RedisToolCache implements ToolCache {
  private degraded = false;

  constructor(
    private readonly options: { client: Redis; keyPrefix: string; fallback: ToolCache; logger?: ToolLogger },
  ) {}

  async get(key: string): Promise<string | undefined> {
    try {
      const value = await this.options.client.get(this.redisKey(key));
      this.recover();
      return value ?? undefined;
    } catch (error) {
      this.degrade(error);
      return this.options.fallback.get(key);
    }
  }

  async set(key: string, value: string, ttlSeconds: number): Promise<void> {
    if (!(ttlSeconds > 0)) return;
    try {
      await this.options.client.set(
        this.redisKey(key),
        value,
        'PX',
        Math.max(1, Math.round(ttlSeconds * 1000)),
      );
      this.recover();
    } catch (error) {
      this.degrade(error);
      await this.options.fallback.set(key, value, ttlSeconds);
    }
  }

  private redisKey(key: string): string {
    return toolCacheRedisKey(this.options.keyPrefix, key);
  }

  private degrade(error: unknown): void {
    if (this.degraded) return;
    this.degraded = true;
    this.options.logger?.warn(
      { error: error instanceof Error ? error.message : String(error) },
      'tool cache unreachable in Redis: using this instance’s own cache until Redis is back',
    );
  }

  private recover(): void {
    if (!this.degraded) return;
    this.degraded = false;
    this.options.logger?.warn({}, 'tool cache in Redis is back');
  }
}

/** The Redis key of a tool cache entry: the prefix, a fixed namespace and the sha256 (hex) of the key. */
export function toolCacheRedisKey(keyPrefix: string, key: string): string {
  return `${keyPrefix}cache:tool:${createHash('sha256').update(key).digest('hex')}`;
}

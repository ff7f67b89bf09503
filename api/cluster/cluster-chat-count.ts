import type Redis from 'ioredis';
import type { ClusterChatCount } from '../llm/llm-scheduler-options';
import { withLimiterCommands, type RedisWithCommands } from '../llm/redis/redis-commands';

/** The hash outlives the cluster's last write by a day, then goes (no instance is left to count). */
const KEEP_MS = 86_400_000;

/**
 * The cluster's chat count in Redis (admittedChats-2.lua): each instance writes how many chats it
 * holds and reads the live instances' total in the same round trip, so admission on every instance
 * sees the chats the others admitted a moment ago — not their last heartbeat, 2 s old, which let
 * three cold instances each admit a whole quota's worth at once.
 */
export class RedisClusterChatCount implements ClusterChatCount {
  private readonly redis: RedisWithCommands;

  constructor(
    private readonly options: {
      redis: Redis;
      keyPrefix: string;
      instanceId: string;
    },
  ) {
    this.redis = withLimiterCommands(options.redis);
  }

  async report(held: number): Promise<number | undefined> {
    try {
      const total = await this.redis.admittedChats(
        `${this.options.keyPrefix}admitted-chats`,
        `${this.options.keyPrefix}instances`,
        this.options.instanceId,
        Math.max(0, held),
        KEEP_MS,
      );
      return Number(total);
    } catch {
      // Redis unreachable: the caller falls back to the last heartbeat's figures (the fail-safe
      // limiter reports the outage; one place logs it).
      return undefined;
    }
  }
}

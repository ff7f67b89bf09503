import type { Redis } from 'ioredis';
import { MAX_ENTRY_BYTES, serialise, type CachedResponse, type ResponseCache } from './response-cache';

/**
 * Redis adapter, shared by every instance: `SET <prefix>llm:<key> <json> PX <ttl>`. Bounded by the
 * TTL and a largest value; Redis's own maxmemory policy bounds the total. Commands fail fast while
 * Redis is unreachable (the client is built without an offline queue), and the caching gateway
 * turns the failure into a miss.
 */
export class RedisResponseCache implements ResponseCache {
  readonly backend = 'redis';

  constructor(
    private readonly options: {
      client: Redis;
      keyPrefix: string;
      maxEntryBytes?: number;
      /** false: the connection is the process's shared one, closed by its owner (the cluster). */
      ownsClient?: boolean;
    },
  ) {}

  async get(key: string): Promise<CachedResponse | undefined> {
    const text = await this.options.client.get(this.redisKey(key));
    if (text === null) return undefined;
    try {
      return JSON.parse(text) as CachedResponse;
    } catch {
      // A value we cannot read (another version wrote it) is a miss, not a failed chat.
      return undefined;
    }
  }

  async set(key: string, value: CachedResponse, ttlSeconds: number): Promise<void> {
    if (!(ttlSeconds > 0)) return;
    const text = serialise(value);
    if (Buffer.byteLength(text) > (this.options.maxEntryBytes ?? MAX_ENTRY_BYTES)) return;
    await this.options.client.set(this.redisKey(key), text, 'PX', Math.round(ttlSeconds * 1000));
  }

  /**
   * Waits for the first connection (at most `waitMs`), so the first chats after a start are not
   * misses only because the socket was still opening; a Redis that is down does not delay the start.
   */
  async open(waitMs = 2000): Promise<void> {
    const client = this.options.client;
    if (client.status === 'ready') return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        client.off('ready', done);
        client.off('error', done);
        resolve();
      };
      const timer = setTimeout(done, waitMs);
      client.once('ready', done);
      client.once('error', done);
    });
  }

  async close(): Promise<void> {
    if (this.options.ownsClient === false) return;
    const { client } = this.options;
    // quit() waits for Redis's reply; a client that is reconnecting (Redis down) rejects it at once
    // (no offline queue) and would go on reconnecting for ever, keeping the process alive: disconnect.
    if (client.status === 'ready') await client.quit().catch(() => client.disconnect());
    else client.disconnect();
  }

  private redisKey(key: string): string {
    return `${this.options.keyPrefix}llm:${key}`;
  }
}

import { LRUCache } from 'lru-cache';
import type { Clock } from '../../clock';
import { MAX_ENTRY_BYTES, serialise, type CachedResponse, type ResponseCache } from './response-cache';

/**
 * In-process adapter (lru-cache): bounded in bytes (key + serialised answer, UTF-8), the least
 * recently used answers go first; expiry reads the injected clock, so tests move time.
 */
export class LruResponseCache implements ResponseCache {
  readonly backend = 'memory';
  private readonly entries: LRUCache<string, CachedResponse>;

  constructor(options: { maxBytes: number; clock: Clock; maxEntryBytes?: number }) {
    const clock = options.clock;
    this.entries = new LRUCache<string, CachedResponse>({
      maxSize: options.maxBytes,
      // One huge answer must not evict the whole cache.
      maxEntrySize: Math.min(options.maxEntryBytes ?? MAX_ENTRY_BYTES, options.maxBytes),
      sizeCalculation: (value, key) => Buffer.byteLength(serialise(value)) + Buffer.byteLength(key),
      perf: { now: () => clock.now() },
      // lru-cache memoises "now" for ttlResolution ms with a real timer; the clock decides instead.
      ttlResolution: 0,
    });
  }

  async get(key: string): Promise<CachedResponse | undefined> {
    return this.entries.get(key);
  }

  async set(key: string, value: CachedResponse, ttlSeconds: number): Promise<void> {
    if (!(ttlSeconds > 0)) return;
    this.entries.set(key, value, { ttl: ttlSeconds * 1000 });
  }

  size(): number {
    return this.entries.size;
  }
}

import { LRUCache } from 'lru-cache';
import { systemClock, type Clock } from '../clock';

/**
 * The cache port for tool results. Values are the content strings handed to the model; only
 * successful results are ever stored. A Redis adapter will implement the same two operations.
 */
export interface ToolCache {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string, ttlSeconds: number): Promise<void>;
  /** Entries currently held (for status pages); adapters that cannot tell return undefined. */
  size?(): number;
}

interface Entry {
  value: string;
  expiresAt: number;
}

/**
 * In-process adapter: bounded by entry count (least recently used goes first) and by total
 * characters. Expiry reads the injected clock, so tests move time instead of sleeping.
 */
export class LruToolCache implements ToolCache {
  private readonly entries: LRUCache<string, Entry>;
  private readonly clock: Clock;

  constructor(options: { maxEntries?: number; maxChars?: number; clock?: Clock } = {}) {
    this.clock = options.clock ?? systemClock;
    this.entries = new LRUCache<string, Entry>({
      max: options.maxEntries ?? 5000,
      maxSize: options.maxChars ?? 50_000_000,
      sizeCalculation: (entry, key) => Math.max(1, entry.value.length + key.length),
    });
  }

  async get(key: string): Promise<string | undefined> {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.clock.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  async set(key: string, value: string, ttlSeconds: number): Promise<void> {
    if (!(ttlSeconds > 0)) return;
    this.entries.set(key, { value, expiresAt: this.clock.now() + ttlSeconds * 1000 });
  }

  size(): number {
    return this.entries.size;
  }
}

/** JSON with object keys sorted, so `{a,b}` and `{b,a}` make the same cache key. */
export function stableStringify(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record)
    .filter((key) => record[key] !== undefined)
    .sort();
  return `{${keys.map((key) => `${JSON.stringify(key)}:${stableStringify(record[key])}`).join(',')}}`;
}

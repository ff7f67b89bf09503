import type Redis from 'ioredis';
import type { Clock } from '../../clock';

/** The Redis limiter's settings (see RedisLimiter for what each shared structure does). */
export interface RedisLimiterOptions {
  /** The connection (built in the composition root with a command timeout and no offline queue). */
  redis: Redis;
  /** Prefix of every key, e.g. `troupe:` (REDIS_KEY_PREFIX). */
  keyPrefix: string;
  /** This instance's id; permit ids start with it, so they are unique across instances. */
  instanceId: string;
  clock: Clock;
  maxConcurrent: number;
  maxRpm: number;
  maxTpm: number;
  burstWindowMs?: number;
  windowMarginMs?: number;
  /** The provider's window (60 s); tests shorten it to see windows roll in real (Redis) time. */
  providerWindowMs?: number;
  /** How long a lease lives without renewal: a killed instance's slots come back within this. */
  leaseMs?: number;
  renewEveryMs?: number;
  /** Blocked on concurrency, ask again this soon: a release on another instance wakes nobody here. */
  pollMs?: number;
  /**
   * How soon a lease whose removal Redis has not confirmed (a failed release, a start whose answer
   * never came) is removed again.
   */
  reconcileEveryMs?: number;
  /** Every start's round trip to Redis, ms (the dispatch path's cost: a histogram in /metrics). */
  onRoundTrip?: (ms: number) => void;
  /**
   * Every start of the cluster's, as the load channel announces it (this instance's own too):
   * `count` calls started at `redisAt` (Redis time, ms), and calls still `waiting` anywhere after
   * them. Admission's late starts measure the cluster's start gaps from it (run-ledger.ts).
   */
  onClusterStarts?: (starts: ClusterStarts) => void;
  /**
   * How long after its retryAt a waiting head call keeps its place in the cluster's order without
   * asking again (its instance cancelled it, paused, or died): the most another instance can lose to it.
   */
  headTtlMs?: number;
  aimd?: SharedAimdOptions;
}

export interface SharedAimdOptions {
  decreaseFactor?: number;
  cooldownMs?: number;
  quietPeriodMs?: number;
  concurrencyStep?: number;
  rpmStep?: number;
}

/** The shared AIMD's settings with their defaults filled in (the Lua scripts take them as arguments). */
export type SharedAimdSettings = Required<SharedAimdOptions> & { tpmStep: number };

export function sharedAimdSettings(options: RedisLimiterOptions): SharedAimdSettings {
  return {
    decreaseFactor: options.aimd?.decreaseFactor ?? 0.7,
    cooldownMs: options.aimd?.cooldownMs ?? 5_000,
    quietPeriodMs: options.aimd?.quietPeriodMs ?? 10_000,
    concurrencyStep: options.aimd?.concurrencyStep ?? 1,
    rpmStep: options.aimd?.rpmStep ?? Math.max(1, Math.ceil(options.maxRpm * 0.05)),
    tpmStep: Math.max(1, Math.ceil(options.maxTpm * 0.05)),
  };
}

/** The recovery rule's arguments, in the order the scripts that recover (tryStart, rateLimited) take them. */
export function recoveryArgs(aimd: SharedAimdSettings): number[] {
  return [aimd.quietPeriodMs, aimd.concurrencyStep, aimd.rpmStep, aimd.tpmStep];
}

export const DEFAULT_LEASE_MS = 10_000;
export const DEFAULT_RENEW_EVERY_MS = 3_000;
export const DEFAULT_POLL_MS = 25;
export const DEFAULT_HEAD_TTL_MS = 100;
export const DEFAULT_RECONCILE_EVERY_MS = 200;

/** The shared limiter's keys under a prefix (the registry's heartbeat reads the same ones). */
export function limiterKeys(keyPrefix: string): {
  leases: string;
  starts: string;
  tokens: string;
  amounts: string;
  state: string;
  heads: string;
  headsUntil: string;
} {
  const base = `${keyPrefix}llm:`;
  return {
    leases: base + 'leases',
    starts: base + 'starts',
    tokens: base + 'tokens',
    amounts: base + 'amounts',
    state: base + 'state',
    heads: base + 'heads',
    headsUntil: base + 'heads-until',
  };
}

/** One start announcement on the load channel (tryStart-7.lua). */
export interface ClusterStarts {
  redisAt: number;
  count: number;
  waiting: boolean;
}

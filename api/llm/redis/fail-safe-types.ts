import type { Clock } from '../../clock';
import type { EffectiveLimits } from '../aimd';
import type { InMemoryLimiter, Permit } from '../limiter';
import type { SchedulerLogger } from '../scheduler-events';
import type { QuotaShare } from './quota-share';
import type { RedisLimiter } from './redis-limiter';

/**
 * The Limiter the scheduler sees when REDIS_URL is set: the shared Redis limiter while Redis answers,
 * and an explicit fail-safe when it does not (never LiteLLM's "let traffic through"):
 *
 * - `shared`: every start is decided by Redis.
 * - `degraded` (a command failed or timed out): this instance runs on its share, 1/N of each limit,
 *   in a local limiter. What the cluster had already used counts against it: 1/N of the shared
 *   window's starts and tokens, recorded by when they happened (each instance records 1/N, so
 *   together they record the whole window), and 1/N of the other instances' calls in flight — as
 *   the load channel last announced them, live — hold slots until they must have ended (the call
 *   timeout). Logged once; `/api/health` says degraded and why.
 * - `recovering` (Redis answers again): this instance's leases are renewed at once and the calls
 *   made alone handed to Redis (adopt-5.lua); a start needs both the local share and Redis, and the
 *   hold for the others' calls stays, because an instance still cut off has not handed over its
 *   starts, nor renewed the leases of its calls that outlived the outage. That lasts one window, or
 *   until every other instance has published that it is back (the registry's heartbeats).
 */
export type LimiterMode = 'shared' | 'degraded' | 'recovering';

/** What the fail-safe needs of the shared limiter (RedisLimiter; a fake in the clock-driven tests). */
export type SharedLimiter = Pick<
  RedisLimiter,
  | 'tryStart'
  | 'tryStartMany'
  | 'release'
  | 'settle'
  | 'holdStarts'
  | 'snapshot'
  | 'close'
  | 'ping'
  | 'adopt'
  | 'renewLeases'
  | 'permitFor'
  | 'reconcile'
  | 'leaseCounts'
  | 'clusterLoad'
  | 'windowMs'
  | 'instanceId'
>;

export interface FailSafeLimiterOptions {
  shared: SharedLimiter;
  /** The fallback, built to enforce `share.limits()` (RPM, TPM); concurrency is counted here. */
  local: InMemoryLimiter;
  share: QuotaShare;
  clock: Clock;
  /** How long another instance's call may still run after the outage began (LLM_TIMEOUT). */
  callTimeoutMs: number;
  logger?: SchedulerLogger;
  /** How often Redis is probed while degraded. */
  probeEveryMs?: number;
  /** The mode changed: the queue should try dispatch again (limits changed). */
  onModeChange?: (mode: LimiterMode) => void;
  /**
   * Every other instance has published, since this time (this clock), that it is back on Redis
   * (InstanceRegistry.othersBackSince): recovery then ends before its window does, since Redis
   * counts everything again. Without it recovery lasts the whole window.
   */
  othersBackSince?: (since: number) => boolean;
}

export interface FailSafeStatus {
  mode: LimiterMode;
  /** Why the shared limits are not in force (the Redis error), while degraded or recovering. */
  reason?: string;
  /** Since when the current mode holds (ISO time, for people). */
  since: string;
  instances: number;
  /** The limits in force here while degraded. */
  share?: EffectiveLimits;
}

/** A permit of the fail-safe: the shared one, the local one, or both (while recovering). */
export interface FailSafePermit extends Permit {
  readonly id: string;
  shared?: Permit;
  local?: Permit;
  released: boolean;
}

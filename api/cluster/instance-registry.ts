import type Redis from 'ioredis';
import type { Clock, TimerHandle } from '../clock';
import type { ClusterLoad } from '../llm/redis/cluster-load';
import { limiterKeys } from '../llm/redis/redis-limiter-options';
import { withCommands, type RedisWithCommands } from '../redis/redis-commands';

/** What one instance publishes about itself (GET /api/queue/status `instance` / `instances`). */
export interface InstanceFigures {
  id: string;
  pid: number;
  host: string;
  /** ISO time the instance started. */
  startedAt: string;
  /** ISO time of this heartbeat. */
  updatedAt: string;
  queueLength: number;
  activeRequests: number;
  admittedChats: number;
  paused: boolean;
  totalProcessed: number;
  totalSuccess: number;
  totalFailed: number;
  totalTimeout: number;
  /** The limiter's mode on that instance (shared, degraded, recovering). */
  limiter: string;
  /** Leases it holds and renews in Redis (its calls the shared limiter granted). */
  leasesHeld?: number;
  /** Leases it is removing (a lost release, a start whose answer never came), not yet confirmed. */
  leasesUnreleased?: number;
  /**
   * Its recent finished chats' actual / model times (two decimals): every instance's admission
   * measures the slowdown over all of them.
   */
  slowdownRatios?: number[];
}

/** The shared window's starts go to the fail-safe by age, in buckets this wide, over 65 s. */
const START_BUCKET_MS = 5_000;
const START_BUCKETS = 13;

export type LiveFigures = Omit<InstanceFigures, 'id' | 'pid' | 'host' | 'startedAt' | 'updatedAt'>;

export interface InstanceRegistryOptions {
  redis: Redis;
  keyPrefix: string;
  instanceId: string;
  host: string;
  clock: Clock;
  heartbeatMs?: number;
  /** An instance that stopped heartbeating leaves the registry (and N) after this. */
  ttlMs?: number;
  /** The shared limiter's load as the heartbeat saw it (after the instance list is updated). */
  onClusterLoad?: (load: Omit<ClusterLoad, 'observedAt'>) => void;
  onError?: (error: unknown) => void;
}

/**
 * Every live instance, published in Redis with a TTL heartbeat (heartbeat-6.lua) — the cluster's one
 * registry of who is alive: N for the quota share during a Redis outage and the tool limits' share,
 * whether a run's owner still lives (the run event log), the admitted chats of all instances for admission, and the cluster's
 * figures for operators. While Redis is unreachable the last known list stays in force.
 */
export class InstanceRegistry {
  private readonly redis: RedisWithCommands;
  private readonly clock: Clock;
  private readonly heartbeatMs: number;
  private readonly ttlMs: number;
  private readonly startedAt = new Date().toISOString();
  private known: InstanceFigures[] = [];
  /** When each known instance last published its figures (this process's clock). */
  private beatAt = new Map<string, number>();
  private figures?: () => LiveFigures;
  private timer?: TimerHandle;
  private closed = false;

  constructor(private readonly options: InstanceRegistryOptions) {
    this.redis = withCommands(options.redis);
    this.clock = options.clock;
    this.heartbeatMs = options.heartbeatMs ?? 2_000;
    this.ttlMs = options.ttlMs ?? 6_000;
  }

  get instanceId(): string {
    return this.options.instanceId;
  }

  /** Starts heartbeating with this instance's live figures; resolves after the first attempt. */
  async start(figures: () => LiveFigures): Promise<void> {
    this.figures = figures;
    await this.beat();
  }

  /** The instances of the last heartbeat that got through (this one included once published). */
  instances(): InstanceFigures[] {
    return this.known;
  }

  /** N: live instances, at least 1 (this one). */
  count(): number {
    return Math.max(1, this.known.filter((instance) => instance.id !== this.instanceId).length + 1);
  }

  /** N, under the name the run event log and the tool limits know it by. */
  instanceCount(): number {
    return this.count();
  }

  /**
   * Whether `instanceId` is alive now by Redis's clock (its heartbeat has not lapsed): a run whose
   * owner is gone may be adopted. A Redis failure counts as alive: nothing is ended on a guess.
   */
  async isAlive(instanceId: string): Promise<boolean> {
    try {
      return Number(await this.redis.instanceAlive(this.instancesKey, instanceId)) === 1;
    } catch {
      return true;
    }
  }

  /** Chats admitted by the other instances, as they last published them. */
  othersAdmittedChats(): number {
    let sum = 0;
    for (const instance of this.known) if (instance.id !== this.instanceId) sum += instance.admittedChats;
    return sum;
  }

  /** The other instances' recent actual / model chat times, as they last published them. */
  othersSlowdownRatios(): number[] {
    const ratios: number[] = [];
    for (const instance of this.known) {
      if (instance.id === this.instanceId || !Array.isArray(instance.slowdownRatios)) continue;
      for (const ratio of instance.slowdownRatios) if (typeof ratio === 'number') ratios.push(ratio);
    }
    return ratios;
  }

  /**
   * Every other live instance has published figures since `since` (this process's clock) and none
   * says its limiter is degraded: each is back on Redis and has handed over what it ran alone.
   * (An instance cut off still publishes nothing; its figures of before stay until its TTL lapses.)
   */
  othersBackSince(since: number): boolean {
    for (const instance of this.known) {
      if (instance.id === this.instanceId) continue;
      if ((this.beatAt.get(instance.id) ?? -Infinity) <= since || instance.limiter === 'degraded')
        return false;
    }
    return true;
  }

  /** This instance's figures now. */
  self(): InstanceFigures {
    return this.describe(this.figures?.() ?? emptyFigures());
  }

  /** The other instances' last published figures, and this one's live ones. */
  current(): InstanceFigures[] {
    return [...this.known.filter((instance) => instance.id !== this.instanceId), this.self()].sort((a, b) =>
      a.id.localeCompare(b.id),
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    // Leave at once rather than after the TTL, so N drops with a clean shutdown.
    await Promise.all([
      this.redis.zrem(this.instancesKey, this.instanceId),
      this.redis.hdel(this.beatsKey, this.instanceId),
      this.redis.del(this.instanceKey(this.instanceId)),
    ]).catch(() => undefined);
  }

  private get instancesKey(): string {
    return `${this.options.keyPrefix}instances`;
  }

  private get beatsKey(): string {
    return `${this.options.keyPrefix}instance-beats`;
  }

  private instanceKey(id: string): string {
    return `${this.options.keyPrefix}instance:${id}`;
  }

  private describe(live: LiveFigures): InstanceFigures {
    return {
      id: this.instanceId,
      pid: process.pid,
      host: this.options.host,
      startedAt: this.startedAt,
      updatedAt: new Date().toISOString(),
      ...live,
    };
  }

  private async beat(): Promise<void> {
    if (this.closed) return;
    try {
      const keys = limiterKeys(this.options.keyPrefix);
      const reply = await this.redis.heartbeat(
        this.instancesKey,
        this.instanceKey(this.instanceId),
        keys.leases,
        keys.starts,
        keys.state,
        this.beatsKey,
        this.instanceId,
        JSON.stringify(this.self()),
        this.ttlMs,
        `${this.options.keyPrefix}instance:`,
        60_000,
        START_BUCKET_MS,
        START_BUCKETS,
      );
      const receivedAt = this.clock.now();
      const [redisAt, active, starts, tokens, buckets] = reply.slice(0, 5).map(Number);
      // Bucket i holds the starts aged i..i+1 buckets: known to have happened by receivedAt − i buckets.
      const recentStarts = reply
        .slice(5, 5 + buckets)
        .map((count, index) => ({ at: receivedAt - index * START_BUCKET_MS, count: Number(count) }))
        .filter((bucket) => bucket.count > 0);
      const known: InstanceFigures[] = [];
      const beatAt = new Map<string, number>();
      const published = reply.slice(5 + buckets);
      for (let index = 0; index + 1 < published.length; index += 2) {
        const figures = JSON.parse(String(published[index])) as InstanceFigures;
        known.push(figures);
        // Its beat's age on Redis's clock, placed on this process's: no two clocks compared.
        beatAt.set(figures.id, receivedAt - (redisAt - Number(published[index + 1])));
      }
      this.known = known;
      this.beatAt = beatAt;
      this.options.onClusterLoad?.({
        redisAt,
        active,
        startsLastMinute: starts,
        tokensLastMinute: tokens,
        recentStarts,
      });
    } catch (error) {
      this.options.onError?.(error);
    } finally {
      if (!this.closed) this.timer = this.clock.setTimeout(() => void this.beat(), this.heartbeatMs);
    }
  }
}

/** An instance's figures before it has served anything. */
export function emptyFigures(): LiveFigures {
  return {
    queueLength: 0,
    activeRequests: 0,
    admittedChats: 0,
    paused: false,
    totalProcessed: 0,
    totalSuccess: 0,
    totalFailed: 0,
    totalTimeout: 0,
    limiter: 'shared',
  };
}

import type { Clock, TimerHandle } from '../../clock';
import type { EffectiveLimits } from '../aimd';
import type { InMemoryLimiter, Limiter, LimiterSnapshot, Permit, StartDecision } from '../limiter';
import type { SchedulerLogger } from '../scheduler-events';
import type { QuotaShare } from './quota-share';
import type { ClusterLoad, RedisLimiter } from './redis-limiter';

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

interface FailSafePermit extends Permit {
  readonly id: string;
  shared?: Permit;
  local?: Permit;
  released: boolean;
}

const DEFAULT_PROBE_EVERY_MS = 1_000;

export class FailSafeLimiter implements Limiter {
  private readonly clock: Clock;
  private modeNow: LimiterMode = 'shared';
  private reason?: string;
  private since: number;
  /** This instance's calls in flight, whoever granted them. */
  private readonly inFlight = new Set<FailSafePermit>();
  /** Calls started alone during the outage (last window), to hand to Redis when it is back. */
  private outageStarts: FailSafePermit[] = [];
  /** A timed-out command is being checked (is Redis gone, or was this process just slow?). */
  private confirming?: Promise<boolean>;
  /** Slots held for the other instances' calls that were in flight when the outage began. */
  private othersInFlight = 0;
  private othersUntil = 0;
  private recoveringUntil = 0;
  /** When this instance lost Redis (the outage's first moment here). */
  private degradedAt = 0;
  private probeTimer?: TimerHandle;
  private probing = false;
  private nextId = 1;
  private closed = false;

  constructor(private readonly options: FailSafeLimiterOptions) {
    this.clock = options.clock;
    this.since = this.clock.now();
  }

  get mode(): LimiterMode {
    this.endRecoveryIfDue();
    return this.modeNow;
  }

  status(): FailSafeStatus {
    this.endRecoveryIfDue();
    return {
      mode: this.modeNow,
      ...(this.reason && this.modeNow !== 'shared' ? { reason: this.reason } : {}),
      since: new Date(Date.now() - (this.clock.now() - this.since)).toISOString(),
      instances: this.options.share.instances(),
      ...(this.modeNow === 'degraded' ? { share: this.options.share.share() } : {}),
    };
  }

  async tryStart(estimatedTokens: number, orderKey?: number): Promise<StartDecision> {
    this.endRecoveryIfDue();
    if (this.modeNow === 'shared') {
      try {
        return this.wrapShared(
          await this.options.shared.tryStart(estimatedTokens, orderKey),
          estimatedTokens,
        );
      } catch (error) {
        // A start that got no answer in time: if Redis answers now, it was this process that
        // stalled (a busy event loop, a GC pause), not Redis. Falling back to a share then would
        // start calls Redis does not count while the others fill the quota: ask again instead (the
        // shared limiter removes the lease the lost answer may have granted).
        if (await this.stillReachable(error)) return { started: false, retryAt: this.clock.now() };
        this.degrade(error);
      }
    }
    const local = this.startLocal(estimatedTokens);
    if (this.modeNow === 'degraded' || !local.started) return local;
    // Recovering: the local share already agreed; Redis must agree too.
    const permit = local.permit as FailSafePermit;
    try {
      const shared = await this.options.shared.tryStart(estimatedTokens, orderKey);
      if (!shared.started) {
        await this.release(permit);
        return shared;
      }
      permit.shared = shared.permit;
      return local;
    } catch (error) {
      this.degrade(error);
      this.outageStarts.push(permit);
      return local;
    }
  }

  async release(permit: Permit): Promise<void> {
    const own = permit as FailSafePermit;
    if (own.released) return;
    own.released = true;
    this.inFlight.delete(own);
    if (own.local) await this.options.local.release(own.local);
    if (own.shared) {
      try {
        await this.options.shared.release(own.shared);
      } catch (error) {
        // The shared limiter keeps removing the lease until Redis confirms; is Redis gone?
        if (!(await this.stillReachable(error))) this.degrade(error);
      }
    }
  }

  async settle(permit: Permit, actualTokens: number): Promise<void> {
    const own = permit as FailSafePermit;
    if (own.local) await this.options.local.settle(own.local, actualTokens);
    if (!own.shared) return;
    try {
      await this.options.shared.settle(own.shared, actualTokens);
    } catch {
      // The reservation stays at its estimate: more than was used, never less.
    }
  }

  async holdStarts(durationMs: number): Promise<void> {
    // Held locally too, so the hold survives an outage that begins right after the 429.
    await this.options.local.holdStarts(durationMs);
    if (this.modeNow === 'degraded') return;
    try {
      await this.options.shared.holdStarts(durationMs);
    } catch (error) {
      this.degrade(error);
    }
  }

  snapshot(): LimiterSnapshot {
    if (this.modeNow !== 'degraded') {
      const shared = this.options.shared.snapshot();
      const localHold = this.options.local.snapshot().heldUntil;
      return localHold > shared.heldUntil ? { ...shared, heldUntil: localHold } : shared;
    }
    const local = this.options.local.snapshot();
    const share = this.options.share.share();
    return {
      ...local,
      active: this.inFlight.size,
      limits: {
        concurrency: Math.max(1, share.concurrency),
        rpm: Math.max(1, share.rpm),
        ...(share.tpm !== undefined ? { tpm: Math.max(1, share.tpm) } : {}),
      },
      configured: this.options.shared.snapshot().configured,
      instanceShare: true,
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.probeTimer) this.clock.clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
    await this.options.shared.close();
  }

  /** The shared limiter's leases: held (renewed) by this instance's calls, and being removed. */
  leaseCounts(): { held: number; unreleased: number } {
    return this.options.shared.leaseCounts();
  }

  /**
   * Something else found Redis unreachable (the registry's heartbeat, the first connection): fall
   * back now rather than at the next start, so health says so even while idle.
   */
  reportFailure(error: unknown): void {
    if (this.closed) return;
    void this.stillReachable(error).then((reachable) => {
      if (!reachable && !this.closed) this.degrade(error);
    });
  }

  /**
   * Whether Redis still answers after `error`: a timeout is confirmed with one ping first (in
   * flight once however many commands timed out together); any other error (refused, reset, not
   * connected) means Redis is unreachable.
   */
  private stillReachable(error: unknown): Promise<boolean> {
    if (!isTimeout(error) || this.modeNow !== 'shared') return Promise.resolve(false);
    this.confirming ??= this.options.shared
      .ping()
      .then(
        () => true,
        () => false,
      )
      .finally(() => {
        this.confirming = undefined;
      });
    return this.confirming;
  }

  /** News of the other instances came (a heartbeat): recovery may end now, waking the queue. */
  checkRecovery(): void {
    this.endRecoveryIfDue();
  }

  /** Checked lazily (starts, status, heartbeats): no timer of its own ends a recovery. */
  private endRecoveryIfDue(): void {
    if (this.modeNow !== 'recovering') return;
    if (
      this.clock.now() >= this.recoveringUntil ||
      this.options.othersBackSince?.(this.degradedAt) === true
    ) {
      // Redis counts every instance's calls again: the hold for the others' calls ends with it.
      this.othersUntil = 0;
      const recoveryMs = Math.round(this.clock.now() - this.since);
      this.enter('shared');
      this.options.logger?.info(
        { recoveryMs },
        'Every instance is back on Redis: the shared LLM limits alone apply again',
      );
    }
  }

  private wrapShared(decision: StartDecision, estimatedTokens: number): StartDecision {
    if (!decision.started) return decision;
    const permit: FailSafePermit = {
      id: String(decision.permit.id),
      startedAt: decision.permit.startedAt,
      estimatedTokens,
      shared: decision.permit,
      released: false,
    };
    this.inFlight.add(permit);
    return { started: true, permit };
  }

  /** A start on this instance's share (degraded or recovering). */
  private startLocal(estimatedTokens: number): StartDecision {
    const now = this.clock.now();
    const share = this.options.share.share();
    if (share.rpm < 1 || (share.tpm !== undefined && share.tpm < 1))
      return { started: false, retryAt: now + this.probeEveryMs };
    // Recovering too: Redis counts only the instances that are back, and the calls of an instance
    // still cut off lost their leases if the outage outlasted them.
    const heldForOthers =
      now < this.othersUntil ? Math.ceil(this.othersInFlight / this.options.share.instances()) : 0;
    if (this.inFlight.size + heldForOthers >= share.concurrency) {
      // Only a release here, or the other instances' calls timing out, opens a slot.
      return {
        started: false,
        retryAt:
          heldForOthers > 0 ? this.othersUntil : share.concurrency < 1 ? now + this.probeEveryMs : null,
      };
    }
    const decision = this.options.local.tryStartNow(estimatedTokens);
    if (!decision.started) return decision;
    const permit: FailSafePermit = {
      id: `${this.instancePrefix()}f${this.nextId++}`,
      startedAt: now,
      estimatedTokens,
      local: decision.permit,
      released: false,
    };
    this.inFlight.add(permit);
    if (this.modeNow === 'degraded') this.outageStarts.push(permit);
    return { started: true, permit };
  }

  private instancePrefix(): string {
    return `${this.options.shared.instanceId}:`;
  }

  private degrade(error: unknown): void {
    if (this.modeNow === 'degraded') return;
    const wasShared = this.modeNow === 'shared';
    this.reason = `Redis unreachable: ${error instanceof Error ? error.message : String(error)}`;
    this.enter('degraded');
    if (wasShared) {
      this.degradedAt = this.clock.now();
      // What the cluster already used in the current window holds this share's room (see above).
      const n = this.options.share.instances();
      const load = this.options.shared.clusterLoad();
      this.options.local.countExternal(
        startsShare(load, n, this.clock.now(), this.options.shared.windowMs),
        Math.ceil(load.tokensLastMinute / n),
      );
      let ownShared = 0;
      for (const permit of this.inFlight) if (permit.shared) ownShared++;
      this.othersInFlight = Math.max(0, load.active - ownShared);
      this.othersUntil = this.clock.now() + this.options.callTimeoutMs;
    }
    this.options.logger?.warn(
      { reason: this.reason, instances: this.options.share.instances(), share: this.options.share.share() },
      'Redis is unreachable: this instance now enforces its 1/N share of the LLM quota alone',
    );
    this.armProbe();
  }

  private enter(mode: LimiterMode): void {
    if (mode === this.modeNow) return;
    this.modeNow = mode;
    this.since = this.clock.now();
    if (mode === 'shared') this.reason = undefined;
    this.options.onModeChange?.(mode);
  }

  private get probeEveryMs(): number {
    return this.options.probeEveryMs ?? DEFAULT_PROBE_EVERY_MS;
  }

  private armProbe(): void {
    if (this.probeTimer || this.closed) return;
    this.probeTimer = this.clock.setTimeout(() => {
      this.probeTimer = undefined;
      void this.probe();
    }, this.probeEveryMs);
  }

  private async probe(): Promise<void> {
    if (this.probing || this.closed || this.modeNow !== 'degraded') return;
    this.probing = true;
    try {
      await this.options.shared.ping();
      await this.handOver();
      this.recoveringUntil = this.clock.now() + this.options.shared.windowMs;
      const outageMs = Math.round(this.clock.now() - this.degradedAt);
      this.enter('recovering');
      this.options.logger?.warn(
        { outageMs },
        'Redis answers again: shared LLM limits are back (this instance keeps to its share too until every instance is back, one window at most)',
      );
    } catch {
      this.armProbe();
    } finally {
      this.probing = false;
    }
  }

  /**
   * Hands the outage's starts and in-flight calls to Redis, and removes the leases of the releases
   * it missed. A call still running is claimed (permitFor) before its lease is written: should it
   * end while the adoption is on its way, its release follows the adoption on the connection and
   * removes the lease, instead of a lease renewed for ever for a call long gone.
   */
  private async handOver(): Promise<void> {
    const now = this.clock.now();
    const windowMs = this.options.shared.windowMs;
    // Starts made while this runs stay for the next hand-over.
    const handed = this.outageStarts;
    this.outageStarts = [];
    try {
      await this.options.shared.renewLeases();
      const recent = handed.filter((permit) => permit.startedAt > now - windowMs);
      const entries = recent.map((permit) => {
        const running = !permit.released;
        if (running)
          permit.shared = this.options.shared.permitFor(permit.id, permit.startedAt, permit.estimatedTokens);
        return {
          id: permit.id,
          startedAt: permit.startedAt,
          tokens: this.options.shared.snapshot().configured.tpm > 0 ? permit.estimatedTokens : 0,
          running,
        };
      });
      await this.options.shared.adopt(entries);
    } catch (error) {
      this.outageStarts = [...handed, ...this.outageStarts];
      throw error;
    }
    await this.options.shared.reconcile();
  }
}

/** ioredis's "Command timed out": the command may still run, and Redis may still be there. */
function isTimeout(error: unknown): boolean {
  return error instanceof Error && /timed out/i.test(error.message);
}

/**
 * This instance's 1/N of the starts the cluster made in the current window, with when they
 * happened: by the heartbeat's age buckets, so that they leave the fallback window as they would
 * have left the shared one (recorded as all made at the outage's start, a 20 s outage held the
 * share closed for a whole minute after it). What the buckets do not explain (starts since the
 * heartbeat) counts as made now; the share is rounded up.
 */
export function startsShare(
  load: ClusterLoad,
  instances: number,
  now: number,
  windowMs: number,
): Array<{ at: number; count: number }> {
  const buckets = (load.recentStarts ?? []).filter((bucket) => bucket.at > now - windowMs);
  const total = Math.max(
    load.startsLastMinute,
    buckets.reduce((sum, bucket) => sum + bucket.count, 0),
  );
  const share = Math.ceil(total / instances);
  const entries = buckets.map((bucket) => ({ at: bucket.at, count: Math.floor(bucket.count / instances) }));
  const placed = entries.reduce((sum, entry) => sum + entry.count, 0);
  return [...entries, { at: now, count: Math.max(0, share - placed) }].filter((entry) => entry.count > 0);
}

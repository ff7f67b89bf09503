import type { Clock, TimerHandle } from '../../clock';
import {
  asBatch,
  firstStart,
  type Limiter,
  type LimiterSnapshot,
  type Permit,
  type StartBatch,
  type StartDecision,
} from '../limiter';
import type { FailSafeLimiterOptions, FailSafePermit, FailSafeStatus, LimiterMode } from './fail-safe-types';
import { FallbackShare, startsShare } from './fallback-share';
import { OutageStarts } from './outage-starts';

export type { FailSafeLimiterOptions, FailSafeStatus, LimiterMode, SharedLimiter } from './fail-safe-types';
export { startsShare } from './fallback-share';

const DEFAULT_PROBE_EVERY_MS = 1_000;

/**
 * The Limiter the scheduler sees when REDIS_URL is set (the modes are described with LimiterMode):
 * the shared Redis limiter while Redis answers, this instance's share (FallbackShare) while it does
 * not, and the hand-over of the calls made alone (OutageStarts) when it answers again.
 */

export class FailSafeLimiter implements Limiter {
  private readonly clock: Clock;
  private modeNow: LimiterMode = 'shared';
  private reason?: string;
  private since: number;
  /** This instance's calls in flight, whoever granted them. */
  private readonly inFlight = new Set<FailSafePermit>();
  /** Calls started alone during the outage (last window), to hand to Redis when it is back. */
  private readonly outageStarts = new OutageStarts();
  /** How much room this instance's share leaves the others while degraded or recovering. */
  private readonly fallback: FallbackShare;
  /** A timed-out command is being checked (is Redis gone, or was this process just slow?). */
  private confirming?: Promise<boolean>;
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
    this.fallback = new FallbackShare({
      share: options.share,
      clock: options.clock,
      callTimeoutMs: options.callTimeoutMs,
      load: () => options.shared.clusterLoad(),
    });
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
    return firstStart(await this.tryStartMany(estimatedTokens, orderKey, 1));
  }

  /**
   * Up to `count` starts in one round trip while Redis decides alone (shared); while degraded or
   * recovering, one start, checked against this instance's share first.
   */
  async tryStartMany(
    estimatedTokens: number,
    orderKey: number | undefined,
    count: number,
  ): Promise<StartBatch> {
    this.endRecoveryIfDue();
    if (this.modeNow === 'shared') {
      try {
        const batch = await this.options.shared.tryStartMany(estimatedTokens, orderKey, count);
        return {
          permits: batch.permits.map((permit) => this.wrapShared(permit, estimatedTokens)),
          retryAt: batch.retryAt,
        };
      } catch (error) {
        // A start that got no answer in time: if Redis answers now, it was this process that
        // stalled (a busy event loop, a GC pause), not Redis. Falling back to a share then would
        // start calls Redis does not count while the others fill the quota: ask again instead (the
        // shared limiter removes the leases the lost answer may have granted).
        if (await this.stillReachable(error)) return { permits: [], retryAt: this.clock.now() };
        this.degrade(error);
      }
    }
    return asBatch(await this.startOnShare(estimatedTokens, orderKey));
  }

  /** One start on this instance's share (degraded), and in Redis too while recovering. */
  private async startOnShare(estimatedTokens: number, orderKey: number | undefined): Promise<StartDecision> {
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
      this.outageStarts.record(permit);
      return local;
    }
  }

  async release(permit: Permit): Promise<void> {
    const own = permit as FailSafePermit;
    if (own.released) return;
    own.released = true;
    this.inFlight.delete(own);
    // Redis's release is sent first, before any await: a start asked right after it (the queue
    // asks at once) then reaches Redis behind it, on the same connection, and finds the slot free.
    const sharedRelease = own.shared ? this.options.shared.release(own.shared) : undefined;
    if (own.local) await this.options.local.release(own.local);
    if (sharedRelease) {
      try {
        await sharedRelease;
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
      this.fallback.endHold();
      const recoveryMs = Math.round(this.clock.now() - this.since);
      this.enter('shared');
      this.options.logger?.info(
        { recoveryMs },
        'Every instance is back on Redis: the shared LLM limits alone apply again',
      );
    }
  }

  /** A call Redis granted: this instance's call in flight from now on. */
  private wrapShared(shared: Permit, estimatedTokens: number): FailSafePermit {
    const permit: FailSafePermit = {
      id: String(shared.id),
      startedAt: shared.startedAt,
      estimatedTokens,
      shared,
      released: false,
    };
    this.inFlight.add(permit);
    return permit;
  }

  /** A start on this instance's share (degraded or recovering). */
  private startLocal(estimatedTokens: number): StartDecision {
    const now = this.clock.now();
    const refusal = this.fallback.refusal(now, this.inFlight.size, this.probeEveryMs);
    if (refusal) return refusal;
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
    if (this.modeNow === 'degraded') this.outageStarts.record(permit);
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
      // What the cluster already used in the current window holds this share's room (see LimiterMode).
      const n = this.options.share.instances();
      const load = this.options.shared.clusterLoad();
      this.options.local.countExternal(
        startsShare(load, n, this.clock.now(), this.options.shared.windowMs),
        Math.ceil(load.tokensLastMinute / n),
      );
      let ownShared = 0;
      for (const permit of this.inFlight) if (permit.shared) ownShared++;
      this.fallback.holdForOthers(load, ownShared);
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
      // Still degraded while the hand-over is on its way, so calls may start alone meanwhile: they
      // are handed over too before Redis decides again (in the same turn as the mode change), or
      // they would run with no lease, never handed over, while the others fill the quota.
      do await this.outageStarts.handOver(this.options.shared, this.clock.now());
      while (this.outageStarts.size > 0);
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
}

/** ioredis's "Command timed out": the command may still run, and Redis may still be there. */
function isTimeout(error: unknown): boolean {
  return error instanceof Error && /timed out/i.test(error.message);
}

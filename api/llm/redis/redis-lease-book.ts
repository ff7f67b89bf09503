import type { Clock, TimerHandle } from '../../clock';
import type { RedisWithCommands } from '../../redis/redis-commands';

export interface RedisLeaseBookOptions {
  redis: RedisWithCommands;
  clock: Clock;
  /** The leases ZSET, the state hash and the two channels a release is announced on. */
  leasesKey: string;
  stateKey: string;
  releaseChannel: string;
  loadChannel: string;
  leaseMs: number;
  renewEveryMs: number;
  reconcileEveryMs: number;
}

/**
 * The Redis limiter's lease bookkeeping: which leases this instance keeps alive (renewed by a timer
 * while their calls run) and which it still has to remove because Redis never confirmed it. The
 * start/release protocol lives in RedisLimiter; this keeps the invariant that a renewal only ever
 * keeps alive a lease whose call still runs here, and that a lease no call holds is removed again
 * until Redis says it is gone.
 */
export class RedisLeaseBook {
  /**
   * Permits whose calls still run here, by lease id: only these leases are renewed. An id enters
   * when its start is granted (or an adopted call is claimed, `permitFor`) and leaves at its
   * release, never later: a renewal can only keep alive a lease whose call still runs.
   */
  private readonly leased = new Set<string>();
  /**
   * Lease ids Redis may still hold although no call runs under them: a release that failed or timed
   * out, and a start whose answer never came (timed out here: Redis may well have granted it). They
   * are removed (idempotent) until Redis confirms it. Commands on one connection run in the order
   * they were sent, so a removal sent after a late start is applied after it.
   */
  private readonly unreleased = new Set<string>();
  private renewTimer?: TimerHandle;
  private reconcileTimer?: TimerHandle;
  private reconciling?: Promise<void>;
  private closed = false;

  constructor(private readonly options: RedisLeaseBookOptions) {}

  /** A lease whose call runs here from now on: renewed until released. */
  hold(id: string): void {
    this.leased.add(id);
    this.armRenewal();
  }

  /** Removes a lease whose call ended; not heard (or not answered in time), removed again later. */
  async release(id: string): Promise<void> {
    // Stop renewing first: whatever happens to the release, this lease is never renewed again.
    this.leased.delete(id);
    const { redis, leasesKey, stateKey, releaseChannel, loadChannel } = this.options;
    try {
      await redis.release(leasesKey, stateKey, releaseChannel, loadChannel, id);
    } catch (error) {
      // Not heard (or not answered in time): removed again until Redis confirms.
      this.forget(id);
      throw error;
    }
  }

  /** Leases no call runs under any more: removed now and, should that fail, again until it works. */
  forget(...ids: string[]): void {
    for (const id of ids) {
      this.leased.delete(id);
      this.unreleased.add(id);
    }
    // Sent at once: on a connection that still works it queues behind the start it undoes.
    void this.reconcile().catch(() => undefined);
  }

  /** Whether some lease still waits for Redis to confirm its removal. */
  hasUnreleased(): boolean {
    return this.unreleased.size > 0;
  }

  /**
   * Removes every lease Redis may hold for a call that no longer runs (see `unreleased`). Resolves
   * once Redis confirmed; rejects (keeping them for the next attempt) if it did not answer.
   */
  reconcile(): Promise<void> {
    if (this.unreleased.size === 0) return Promise.resolve();
    if (this.reconciling) return this.reconciling;
    const ids = [...this.unreleased];
    const { redis, leasesKey, stateKey, releaseChannel, loadChannel } = this.options;
    this.reconciling = redis
      .release(leasesKey, stateKey, releaseChannel, loadChannel, ...ids)
      .then(() => {
        for (const id of ids) this.unreleased.delete(id);
      })
      .finally(() => {
        this.reconciling = undefined;
        this.armReconcile();
      });
    return this.reconciling;
  }

  /** Leases whose calls run here now (renewed), and leases being removed (not yet confirmed). */
  counts(): { held: number; unreleased: number } {
    return { held: this.leased.size, unreleased: this.unreleased.size };
  }

  /** Renews every lease of a call still running here now, not at the next timer. */
  async renewAll(): Promise<void> {
    if (this.leased.size === 0) return;
    await this.options.redis.renew(this.options.leasesKey, this.options.leaseMs, ...this.leased);
  }

  /** Stops renewing (leases then expire on their own) and makes one last attempt to remove the rest. */
  close(): Promise<void> {
    this.closed = true;
    if (this.renewTimer) this.options.clock.clearTimeout(this.renewTimer);
    this.renewTimer = undefined;
    if (this.reconcileTimer) this.options.clock.clearTimeout(this.reconcileTimer);
    this.reconcileTimer = undefined;
    // One last attempt to give back what no call holds (a drain); whatever fails expires on its own.
    return this.reconcile().catch(() => undefined);
  }

  /** Test seam: forget every lease without releasing, as a SIGKILLed process would. */
  abandon(): void {
    this.leased.clear();
    this.unreleased.clear();
    void this.close();
  }

  private armReconcile(): void {
    if (this.reconcileTimer || this.closed || this.unreleased.size === 0) return;
    this.reconcileTimer = this.options.clock.setTimeout(() => {
      this.reconcileTimer = undefined;
      void this.reconcile().catch(() => undefined);
    }, this.options.reconcileEveryMs);
  }

  private armRenewal(): void {
    if (this.renewTimer || this.closed || this.leased.size === 0) return;
    this.renewTimer = this.options.clock.setTimeout(() => {
      this.renewTimer = undefined;
      if (this.leased.size === 0 || this.closed) return;
      this.options.redis
        .renew(this.options.leasesKey, this.options.leaseMs, ...this.leased)
        .catch(() => {
          // Redis is unreachable: the fail-safe limiter notices on its next call; the leases are
          // written again by the next renewal that gets through.
        })
        .finally(() => this.armRenewal());
    }, this.options.renewEveryMs);
  }
}

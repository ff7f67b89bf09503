import type { Clock } from '../../clock';
import type { StartDecision } from '../limiter';
import type { ClusterLoad } from './cluster-load';
import type { QuotaShare } from './quota-share';

/**
 * What this instance's 1/N share must leave to the rest of the cluster while Redis is lost: the
 * other instances' calls that were in flight when the outage began hold slots here until they must
 * have ended (the call timeout), and the starts the cluster already made in the current window
 * count against the share's window (`startsShare`). The fail-safe limiter decides the mode; this
 * decides how much room the share has.
 */
export class FallbackShare {
  /** Slots held for the other instances' calls that were in flight when the outage began. */
  private othersInFlight = 0;
  private othersUntil = 0;
  /** This instance's own calls Redis counted when the outage began (part of the cluster's count). */
  private ownShared = 0;

  constructor(
    private readonly options: {
      share: QuotaShare;
      clock: Clock;
      /** How long another instance's call may still run after the outage began (LLM_TIMEOUT). */
      callTimeoutMs: number;
      /**
       * The newest news of the cluster's state. News sent before the outage can still arrive after
       * this instance noticed it (the load channel is another connection, read in another order).
       */
      load: () => ClusterLoad;
    },
  ) {}

  /** The outage began: 1/N of the other instances' calls then in flight hold slots until they time out. */
  holdForOthers(load: ClusterLoad, ownShared: number): void {
    this.ownShared = ownShared;
    this.othersInFlight = Math.max(0, load.active - ownShared);
    this.othersUntil = this.options.clock.now() + this.options.callTimeoutMs;
  }

  /**
   * The others' calls held for: the most the news has shown since the outage began. A start another
   * instance made just before Redis went is announced on the load channel, which this instance may
   * read only after its commands connection reported the loss: holding for the count known at that
   * moment alone let a share start beside calls it had not heard of (a call past C, once, in the
   * chaos test's Redis restart).
   */
  private othersHeld(): number {
    const latest = Math.max(0, this.options.load().active - this.ownShared);
    if (latest > this.othersInFlight) this.othersInFlight = latest;
    return this.othersInFlight;
  }

  /** Redis counts every instance's calls again: the hold for the others' calls ends. */
  endHold(): void {
    this.othersUntil = 0;
  }

  /**
   * Why a start on the share must wait now (null: the share has room), given this instance's calls
   * in flight; `retryEveryMs` is how soon to ask again when the share is empty (the probe period).
   */
  refusal(now: number, inFlight: number, retryEveryMs: number): StartDecision | null {
    const share = this.options.share.share();
    if (share.rpm < 1 || (share.tpm !== undefined && share.tpm < 1))
      return { started: false, retryAt: now + retryEveryMs };
    // Recovering too: Redis counts only the instances that are back, and the calls of an instance
    // still cut off lost their leases if the outage outlasted them.
    const heldForOthers =
      now < this.othersUntil ? Math.ceil(this.othersHeld() / this.options.share.instances()) : 0;
    if (inFlight + heldForOthers >= share.concurrency) {
      // Only a release here, or the other instances' calls timing out, opens a slot.
      return {
        started: false,
        retryAt: heldForOthers > 0 ? this.othersUntil : share.concurrency < 1 ? now + retryEveryMs : null,
      };
    }
    return null;
  }
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

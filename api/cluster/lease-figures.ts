import type { InstanceFigures } from './instance-registry';

/**
 * Leases held against calls running: at every quiet moment the leases in Redis equal the calls in
 * flight at the provider, summed over instances (docs/ARCHITECTURE.md §6). Reported per instance and
 * for the cluster in GET /api/queue/status (`queue.leases`) and /metrics, where an alert watches the
 * two disagree for long: more leases than calls is a leak (slots lost to nobody), fewer is a call
 * the shared quota does not count (an instance on its fallback share, or a lease that lapsed while
 * its call still ran).
 */
export interface LeaseFigures {
  instance: {
    /** Leases this instance holds and renews in Redis: its calls granted by the shared limiter. */
    held: number;
    /** Leases being removed (a lost release, a start whose answer never came), not yet confirmed. */
    unreleased: number;
    /** This instance's calls in flight at the provider. */
    callsRunning: number;
  };
  cluster: {
    /** Leases in Redis, as last heard (a reply, an announcement or a heartbeat). */
    inRedis: number;
    /** Every instance's leases held, as last published (this one's live). */
    held: number;
    /** Every instance's calls in flight, as last published (this one's live). */
    callsRunning: number;
  };
}

export function leaseFigures(
  self: InstanceFigures,
  instances: InstanceFigures[],
  own: { held: number; unreleased: number },
  leasesInRedis: number,
): LeaseFigures {
  let held = own.held;
  let callsRunning = self.activeRequests;
  for (const instance of instances) {
    if (instance.id === self.id) continue;
    held += instance.leasesHeld ?? 0;
    callsRunning += instance.activeRequests;
  }
  return {
    instance: { held: own.held, unreleased: own.unreleased, callsRunning: self.activeRequests },
    cluster: { inRedis: leasesInRedis, held, callsRunning },
  };
}

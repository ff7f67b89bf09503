import type { ClusterSpec, ClusterTarget, failoverSummary } from './cluster-target';

/**
 * The faults a cluster variant injects on schedule, and what the report says of them: one instance
 * SIGKILLed at a fraction of the arrival phase, and Redis cut off from every instance for a while
 * (the fail-safe's test). Times are the bench's clock (`now`); the facts keep wall-clock times for
 * people reading cluster.json beside the instances' logs.
 */
export interface ClusterFaultFacts {
  killed?: { pid: number; at: number };
  redisOutage?: { from: number; to?: number };
}

export interface ScheduledFaults {
  facts: ClusterFaultFacts;
  /** The chats drained: cancels what has not fired, and ends an outage still on. */
  finish(): ClusterFaultFacts;
}

export function scheduleClusterFaults(options: {
  cluster: ClusterTarget;
  spec: ClusterSpec;
  /** The arrival phase: faults are placed at fractions of it. */
  startAt: number;
  durationMs: number;
  now: () => number;
  /** A progress line for the operator (omitted with --quiet). */
  say?: (line: string) => void;
}): ScheduledFaults {
  const { cluster, spec, startAt, durationMs, now, say } = options;
  const facts: ClusterFaultFacts = {};
  const timers: NodeJS.Timeout[] = [];
  const at = (fraction: number, action: () => void, afterMs = 0) =>
    timers.push(setTimeout(action, Math.max(0, startAt + durationMs * fraction + afterMs - now())));

  if (spec.killAtFraction !== undefined) {
    at(spec.killAtFraction, () => {
      facts.killed = cluster.killOne();
      say?.(`cluster: SIGKILL instance ${facts.killed.pid}`);
    });
  }
  const outage = spec.redisOutage;
  if (outage) {
    at(outage.atFraction, () => {
      cluster.cutRedis();
      facts.redisOutage = { from: Date.now() };
      say?.('cluster: Redis cut off');
    });
    at(
      outage.atFraction,
      () => {
        cluster.restoreRedis();
        if (facts.redisOutage) facts.redisOutage.to = Date.now();
        say?.('cluster: Redis reachable again');
      },
      outage.durationS * 1000,
    );
  }
  return {
    facts,
    finish() {
      for (const timer of timers) clearTimeout(timer);
      if (facts.redisOutage && facts.redisOutage.to === undefined) {
        cluster.restoreRedis();
        facts.redisOutage.to = Date.now();
      }
      return facts;
    },
  };
}

/** The report's closing line for a cluster run. */
export function clusterSummaryLine(
  instances: number,
  facts: ClusterFaultFacts,
  failover: ReturnType<typeof failoverSummary>,
): string {
  const { killed, redisOutage } = facts;
  return (
    `cluster: ${instances} instances behind nginx` +
    (killed ? `, one SIGKILLed at ${new Date(killed.at).toISOString()}` : '') +
    (redisOutage
      ? `, Redis unreachable for all ${(((redisOutage.to ?? redisOutage.from) - redisOutage.from) / 1000).toFixed(1)} s from ${new Date(redisOutage.from).toISOString()}`
      : '') +
    `; chats resumed on another instance: ${failover.resumed}, sent again after their instance died: ` +
    `${failover.resubmitted}, completed after either: ${failover.completedAfterFailover}`
  );
}

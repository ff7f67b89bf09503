import type { Clock } from '../clock';
import { PRIORITY_CLASSES, type PriorityClass } from './priority-class';
import { RollingHistogram } from './rolling-histogram';

/**
 * The scheduler's counters and rolling histograms, overall and per agent. Waits are recorded by the
 * queue at each dispatch; outcomes and process times by the scheduler once per logical call.
 */
export type CallOutcome = 'success' | 'failed' | 'timeout' | 'cancelled';

export interface AgentStats {
  queued: number;
  active: number;
  processed: number;
  success: number;
  failed: number;
  timeout: number;
  averageWaitTime: number;
  p95WaitTime: number;
  averageProcessTime: number;
  p95ProcessTime: number;
}

class Tally {
  processed = 0;
  success = 0;
  failed = 0;
  timeout = 0;
  cancelled = 0;
  readonly wait: RollingHistogram;
  readonly process: RollingHistogram;

  constructor(clock: Clock, windowMs: number) {
    this.wait = new RollingHistogram({ clock, windowMs });
    this.process = new RollingHistogram({ clock, windowMs });
  }

  count(outcome: CallOutcome): void {
    if (outcome === 'cancelled') {
      this.cancelled++;
      return;
    }
    this.processed++;
    this[outcome]++;
  }
}

export class SchedulerStats {
  readonly overall: Tally;
  /** One tally per priority class: the agents and the gateway's classes. */
  private readonly byAgent: Record<PriorityClass, Tally>;
  /** Successful attempts only: the provider latency the admission estimate divides by. */
  readonly latency: RollingHistogram;

  constructor(clock: Clock, windowMs = 300_000) {
    this.overall = new Tally(clock, windowMs);
    this.latency = new RollingHistogram({ clock, windowMs: Math.min(windowMs, 60_000), bucketMs: 5_000 });
    this.byAgent = Object.fromEntries(
      PRIORITY_CLASSES.map((agent) => [agent, new Tally(clock, windowMs)]),
    ) as Record<PriorityClass, Tally>;
  }

  recordWait(agent: PriorityClass, waitMs: number): void {
    this.overall.wait.record(waitMs);
    this.byAgent[agent].wait.record(waitMs);
  }

  recordOutcome(agent: PriorityClass, outcome: CallOutcome, processMs: number): void {
    this.overall.count(outcome);
    this.byAgent[agent].count(outcome);
    if (outcome !== 'cancelled') {
      this.overall.process.record(processMs);
      this.byAgent[agent].process.record(processMs);
    }
  }

  recordLatency(latencyMs: number): void {
    this.latency.record(latencyMs);
  }

  agent(agent: PriorityClass, queued: number, active: number): AgentStats {
    const tally = this.byAgent[agent];
    const wait = tally.wait.summary();
    const process = tally.process.summary();
    return {
      queued,
      active,
      processed: tally.processed,
      success: tally.success,
      failed: tally.failed,
      timeout: tally.timeout,
      averageWaitTime: Math.round(wait.mean),
      p95WaitTime: Math.round(wait.p95),
      averageProcessTime: Math.round(process.mean),
      p95ProcessTime: Math.round(process.p95),
    };
  }
}

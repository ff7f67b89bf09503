import type { PriorityClass } from './priority-class';
import type { UnusableReason } from './provider';
import type { BreakerState } from './provider-breaker';
import type { CallOutcome } from './scheduler-stats';

/** What the scheduler tells the metrics module (prom-client) and the logs. */
export type SchedulerEvent =
  | { type: 'start'; agentType: PriorityClass; attempt: number; waitMs: number }
  | {
      type: 'end';
      agentType: PriorityClass;
      outcome: CallOutcome;
      code?: string;
      waitMs: number;
      processMs: number;
    }
  | { type: 'rate_limited'; agentType: PriorityClass; decreased: boolean }
  | { type: 'retry'; agentType: PriorityClass; attempt: number; delayMs: number }
  | { type: 'timeout'; agentType: PriorityClass; where: 'queue' | 'in_flight' }
  | { type: 'shed'; reason: 'admission' | 'queue_full' }
  | { type: 'breaker'; state: BreakerState }
  /** The breaker failed a call fast (open, or half-open with its probe out): no provider call. */
  | { type: 'breaker_rejected'; agentType: PriorityClass }
  /** A call's reasoning pieces (a thinking model's), counted once when the call ends. */
  | { type: 'reasoning'; agentType: PriorityClass; deltas: number }
  /** An attempt got no byte within the first-byte timeout. */
  | { type: 'first_byte_timeout'; agentType: PriorityClass }
  /** The provider refused for a reason only a person can end (quota, billing, key, model). */
  | { type: 'provider_refused'; agentType: PriorityClass; reason: UnusableReason };

/** Where the metrics module (prom-client) plugs in. */
export interface SchedulerMetrics {
  record(event: SchedulerEvent): void;
}

export interface SchedulerLogger {
  warn(object: Record<string, unknown>, message: string): void;
  info(object: Record<string, unknown>, message: string): void;
}

export interface SchedulerCounters {
  starts: number;
  rateLimited: number;
  retries: number;
  queueTimeouts: number;
  inFlightTimeouts: number;
  shed: number;
  breakerRejections: number;
  aimdDecreases: number;
  /** Reasoning pieces a thinking model streamed (shown apart from the answer). */
  reasoningDeltas: number;
  firstByteTimeouts: number;
  /** Refusals only a person can end (each opened, or kept open, the breaker for its reason). */
  providerRefusals: number;
}

/** Where a call's end is tallied for the status page (the queue's SchedulerStats). */
export interface OutcomeTally {
  recordOutcome(agent: PriorityClass, outcome: CallOutcome, processMs: number): void;
}

/**
 * The one stream every policy of the call path reports to. The status page's counters, the
 * per-agent outcome tallies and the metrics sink are all derived from the same events, so they
 * cannot drift apart: a count exists only where its event was emitted.
 */
export class SchedulerEventStream {
  private readonly counts: Omit<SchedulerCounters, 'aimdDecreases'> = {
    starts: 0,
    rateLimited: 0,
    retries: 0,
    queueTimeouts: 0,
    inFlightTimeouts: 0,
    shed: 0,
    breakerRejections: 0,
    reasoningDeltas: 0,
    firstByteTimeouts: 0,
    providerRefusals: 0,
  };

  constructor(
    private readonly options: {
      tally?: OutcomeTally;
      metrics?: SchedulerMetrics;
      logger?: SchedulerLogger;
    } = {},
  ) {}

  emit(event: SchedulerEvent): void {
    this.count(event);
    try {
      this.options.metrics?.record(event);
    } catch (error) {
      // A broken metrics sink must never fail a user's call.
      this.options.logger?.warn({ error: String(error) }, 'Scheduler metrics sink threw');
    }
  }

  /** The counts so far; AIMD's decreases are the limiter's own (it may be shared by instances). */
  counters(aimdDecreases: number): SchedulerCounters {
    return { ...this.counts, aimdDecreases };
  }

  private count(event: SchedulerEvent): void {
    const counts = this.counts;
    switch (event.type) {
      case 'start':
        counts.starts++;
        break;
      case 'end':
        this.options.tally?.recordOutcome(event.agentType, event.outcome, event.processMs);
        break;
      case 'rate_limited':
        counts.rateLimited++;
        break;
      case 'retry':
        counts.retries++;
        break;
      case 'timeout':
        if (event.where === 'queue') counts.queueTimeouts++;
        else counts.inFlightTimeouts++;
        break;
      case 'shed':
        counts.shed++;
        break;
      case 'breaker_rejected':
        counts.breakerRejections++;
        break;
      case 'reasoning':
        counts.reasoningDeltas += event.deltas;
        break;
      case 'first_byte_timeout':
        counts.firstByteTimeouts++;
        break;
      case 'provider_refused':
        counts.providerRefusals++;
        break;
      case 'breaker':
        break;
    }
  }
}

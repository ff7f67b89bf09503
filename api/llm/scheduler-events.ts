import type { AgentName } from '../agents/agent-name';
import type { BreakerState } from './provider-breaker';
import type { CallOutcome } from './scheduler-stats';

/** What the scheduler tells the metrics module (prom-client) and the logs. */
export type SchedulerEvent =
  | { type: 'start'; agentType: AgentName; attempt: number; waitMs: number }
  | {
      type: 'end';
      agentType: AgentName;
      outcome: CallOutcome;
      code?: string;
      waitMs: number;
      processMs: number;
    }
  | { type: 'rate_limited'; agentType: AgentName; decreased: boolean }
  | { type: 'retry'; agentType: AgentName; attempt: number; delayMs: number }
  | { type: 'timeout'; agentType: AgentName; where: 'queue' | 'in_flight' }
  | { type: 'shed'; reason: 'admission' | 'queue_full' }
  | { type: 'breaker'; state: BreakerState };

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
}

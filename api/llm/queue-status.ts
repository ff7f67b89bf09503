import { AGENT_NAMES, type AgentName } from '../agents/agent-name';
import { GATEWAY_CLASSES, type GatewayClass, type PriorityClass } from './priority-class';
import type { LimiterSnapshot } from './limiter';
import type { AgentStats, SchedulerStats } from './scheduler-stats';
import type { WaitReasons } from './wait-reasons';

/**
 * The shape of `GET /api/queue/status`'s `queue` object: the brief's field names kept exactly
 * (the README's HTTP API section), plus `paused`, `byAgent`, the effective AIMD limits and a few extras.
 */
export interface QueueStatus {
  queueLength: number;
  activeRequests: number;
  totalProcessed: number;
  totalSuccess: number;
  totalFailed: number;
  totalTimeout: number;
  totalCancelled: number;
  averageWaitTime: number;
  averageProcessTime: number;
  p95WaitTime: number;
  p95ProcessTime: number;
  p99WaitTime: number;
  p99ProcessTime: number;
  currentRPM: number;
  maxRPM: number;
  currentConcurrency: number;
  maxConcurrency: number;
  utilizationRate: string;
  paused: boolean;
  byAgent: Record<AgentName, AgentStats>;
  /** The OpenAI-compatible gateway's classes (api/gateway/), beside the agents'. */
  byClass: Record<GatewayClass, AgentStats>;
  effective: { maxConcurrency: number; maxRPM: number; maxTPM: number };
  tokensLastMinute: number;
  maxTPM: number;
  /** Why calls wait: what holds them now, and what held them over the last minute (wait-reasons.ts). */
  waitReasons: WaitReasons;
}

/** `utilizationRate` is the busier of the two limits (in-flight share or share of the minute's starts). */
export function buildQueueStatus(
  stats: SchedulerStats,
  limiter: LimiterSnapshot,
  state: {
    paused: boolean;
    /** How many calls of a class wait in the lanes, and how many hold a permit. */
    queued: (name: PriorityClass) => number;
    active: (name: PriorityClass) => number;
    waitReasons: WaitReasons;
  },
): QueueStatus {
  const overall = stats.overall;
  const wait = overall.wait.summary();
  const process = overall.process.summary();
  const byAgent = {} as Record<AgentName, AgentStats>;
  let queueLength = 0;
  for (const agent of AGENT_NAMES) {
    byAgent[agent] = stats.agent(agent, state.queued(agent), state.active(agent));
    queueLength += state.queued(agent);
  }
  const byClass = {} as Record<GatewayClass, AgentStats>;
  for (const name of GATEWAY_CLASSES) {
    byClass[name] = stats.agent(name, state.queued(name), state.active(name));
    queueLength += state.queued(name);
  }
  const utilization = Math.max(
    limiter.active / limiter.limits.concurrency,
    limiter.startsLastMinute / limiter.limits.rpm,
  );
  return {
    queueLength,
    activeRequests: limiter.active,
    totalProcessed: overall.processed,
    totalSuccess: overall.success,
    totalFailed: overall.failed,
    totalTimeout: overall.timeout,
    totalCancelled: overall.cancelled,
    averageWaitTime: Math.round(wait.mean),
    averageProcessTime: Math.round(process.mean),
    p95WaitTime: Math.round(wait.p95),
    p95ProcessTime: Math.round(process.p95),
    p99WaitTime: Math.round(wait.p99),
    p99ProcessTime: Math.round(process.p99),
    currentRPM: limiter.startsLastMinute,
    maxRPM: limiter.configured.rpm,
    currentConcurrency: limiter.active,
    maxConcurrency: limiter.configured.concurrency,
    utilizationRate: `${Math.round(Math.min(1, utilization) * 100)}%`,
    paused: state.paused,
    byAgent,
    byClass,
    effective: {
      maxConcurrency: limiter.limits.concurrency,
      maxRPM: limiter.limits.rpm,
      maxTPM: limiter.limits.tpm ?? 0,
    },
    tokensLastMinute: limiter.tokensLastMinute,
    maxTPM: limiter.configured.tpm,
    waitReasons: state.waitReasons,
  };
}

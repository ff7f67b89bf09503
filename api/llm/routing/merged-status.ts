import { AGENT_NAMES, type AgentName } from '../../agents/agent-name';
import { GATEWAY_CLASSES } from '../priority-class';
import type { SchedulerStatus } from '../llm-scheduler-options';
import type { BreakerState } from '../provider-breaker';
import type { AgentStats } from '../scheduler-stats';

/**
 * The status of several endpoints as one (the brief's `queue` fields of `/api/queue/status`, the
 * health page, the metrics without an endpoint label): counts and limits add up, averages are
 * weighted by calls processed, percentiles and holds take the worst endpoint. With one endpoint it
 * is that endpoint's status unchanged.
 */
export function mergeStatuses(statuses: readonly SchedulerStatus[]): SchedulerStatus {
  if (statuses.length === 1) return statuses[0];
  const sum = (pick: (status: SchedulerStatus) => number) =>
    statuses.reduce((total, status) => total + pick(status), 0);
  const max = (pick: (status: SchedulerStatus) => number) => Math.max(0, ...statuses.map(pick));
  const processed = statuses.map((status) => status.totalProcessed);
  const weighted = (pick: (status: SchedulerStatus) => number) => weightedMean(statuses.map(pick), processed);
  const maxConcurrency = sum((status) => status.maxConcurrency);
  const maxRPM = sum((status) => status.maxRPM);
  const activeRequests = sum((status) => status.activeRequests);
  const currentRPM = sum((status) => status.currentRPM);
  const utilization = Math.max(activeRequests / maxConcurrency, currentRPM / maxRPM);
  const byAgent = {} as Record<AgentName, AgentStats>;
  for (const agent of AGENT_NAMES)
    byAgent[agent] = mergeAgent(statuses.map((status) => status.byAgent[agent]));
  const byClass = {} as SchedulerStatus['byClass'];
  for (const name of GATEWAY_CLASSES)
    byClass[name] = mergeAgent(statuses.map((status) => status.byClass[name]));
  const counters = { ...statuses[0].counters };
  for (const key of Object.keys(counters) as Array<keyof typeof counters>) {
    counters[key] = sum((status) => status.counters[key]);
  }
  return {
    queueLength: sum((status) => status.queueLength),
    activeRequests,
    totalProcessed: sum((status) => status.totalProcessed),
    totalSuccess: sum((status) => status.totalSuccess),
    totalFailed: sum((status) => status.totalFailed),
    totalTimeout: sum((status) => status.totalTimeout),
    totalCancelled: sum((status) => status.totalCancelled),
    averageWaitTime: weighted((status) => status.averageWaitTime),
    averageProcessTime: weighted((status) => status.averageProcessTime),
    p95WaitTime: max((status) => status.p95WaitTime),
    p95ProcessTime: max((status) => status.p95ProcessTime),
    p99WaitTime: max((status) => status.p99WaitTime),
    p99ProcessTime: max((status) => status.p99ProcessTime),
    currentRPM,
    maxRPM,
    currentConcurrency: sum((status) => status.currentConcurrency),
    maxConcurrency,
    utilizationRate: `${Math.round(Math.min(1, utilization) * 100)}%`,
    paused: statuses.some((status) => status.paused),
    byAgent,
    byClass,
    effective: {
      maxConcurrency: sum((status) => status.effective.maxConcurrency),
      maxRPM: sum((status) => status.effective.maxRPM),
      maxTPM: sum((status) => status.effective.maxTPM),
    },
    tokensLastMinute: sum((status) => status.tokensLastMinute),
    maxTPM: sum((status) => status.maxTPM),
    refusingNewChats: statuses.some((status) => status.refusingNewChats),
    // Every endpoint registers the same admitted chats.
    admittedChats: max((status) => status.admittedChats),
    parked: sum((status) => status.parked),
    latencyEstimateMs: nullableMean(
      statuses.map((status) => status.latencyEstimateMs),
      processed,
    ),
    firstTokenMs: nullableMean(
      statuses.map((status) => status.firstTokenMs),
      processed,
    ),
    providerHoldMs: max((status) => status.providerHoldMs),
    rateLimited: statuses.some((status) => status.rateLimited),
    breaker: mergeBreakers(statuses.map((status) => status.breaker)),
    // Unusable only when every endpoint is; why calls wait is told by the endpoint most of them wait at.
    ...(statuses.every((status) => status.unavailable) ? { unavailable: statuses[0].unavailable } : {}),
    waitReasons: statuses.reduce((busiest, status) =>
      status.waitReasons.waitingCalls > busiest.waitReasons.waitingCalls ? status : busiest,
    ).waitReasons,
    counters,
  };
}

/**
 * One breaker state for several endpoints: closed when all are, open only when all are (no
 * endpoint can serve), anything between reads `half_open` — some capacity is lost (degraded).
 */
export function mergeBreakers(states: readonly BreakerState[]): BreakerState {
  if (states.every((state) => state === 'closed')) return 'closed';
  if (states.every((state) => state === 'open')) return 'open';
  return 'half_open';
}

function mergeAgent(stats: readonly AgentStats[]): AgentStats {
  const sum = (pick: (agent: AgentStats) => number) => stats.reduce((total, agent) => total + pick(agent), 0);
  const processed = stats.map((agent) => agent.processed);
  return {
    queued: sum((agent) => agent.queued),
    active: sum((agent) => agent.active),
    processed: sum((agent) => agent.processed),
    success: sum((agent) => agent.success),
    failed: sum((agent) => agent.failed),
    timeout: sum((agent) => agent.timeout),
    averageWaitTime: weightedMean(
      stats.map((agent) => agent.averageWaitTime),
      processed,
    ),
    p95WaitTime: Math.max(0, ...stats.map((agent) => agent.p95WaitTime)),
    averageProcessTime: weightedMean(
      stats.map((agent) => agent.averageProcessTime),
      processed,
    ),
    p95ProcessTime: Math.max(0, ...stats.map((agent) => agent.p95ProcessTime)),
  };
}

function weightedMean(values: readonly number[], weights: readonly number[]): number {
  const total = weights.reduce((sum, weight) => sum + weight, 0);
  if (total === 0) return 0;
  return Math.round(values.reduce((sum, value, index) => sum + value * weights[index], 0) / total);
}

function nullableMean(values: ReadonlyArray<number | null>, weights: readonly number[]): number | null {
  const known = values.flatMap((value, index) =>
    value === null ? [] : [{ value, weight: weights[index] || 1 }],
  );
  if (known.length === 0) return null;
  return weightedMean(
    known.map((entry) => entry.value),
    known.map((entry) => entry.weight),
  );
}

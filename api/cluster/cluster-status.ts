import type { SchedulerStatus } from '../llm/llm-scheduler-options';
import type { InstanceFigures } from './instance-registry';

/**
 * `GET /api/queue/status` for a cluster: the brief's fields for all instances — the limiter's
 * (in flight, currentRPM, effective limits) come from the shared window already; waiting calls and
 * totals are summed over the instances' published figures (this one's live). Averages and
 * percentiles stay this instance's own: histograms do not add up.
 */
export interface ClusterStatus<T extends SchedulerStatus = SchedulerStatus> {
  queue: T & { instanceCount: number };
  instance: InstanceFigures;
  instances: InstanceFigures[];
}

export function clusterQueueStatus<T extends SchedulerStatus>(
  local: T,
  instances: InstanceFigures[],
  self: InstanceFigures,
): ClusterStatus<T> {
  const sum = (pick: (instance: InstanceFigures) => number) =>
    instances.reduce((total, instance) => total + pick(instance), 0);
  return {
    queue: {
      ...local,
      queueLength: sum((instance) => instance.queueLength),
      totalProcessed: sum((instance) => instance.totalProcessed),
      totalSuccess: sum((instance) => instance.totalSuccess),
      totalFailed: sum((instance) => instance.totalFailed),
      totalTimeout: sum((instance) => instance.totalTimeout),
      admittedChats: sum((instance) => instance.admittedChats),
      // Paused anywhere means an operator's pause is (still) reaching the cluster.
      paused: instances.some((instance) => instance.paused),
      instanceCount: instances.length,
    },
    instance: forOperators(self),
    instances: instances.map(forOperators),
  };
}

/** The figures without what only admission reads (up to a hundred ratios per instance). */
function forOperators(instance: InstanceFigures): InstanceFigures {
  const { slowdownRatios: _ratios, ...figures } = instance;
  return figures;
}

import type { SchedulerStatus } from './llm-scheduler-options';

/** Whether the provider has room for work nobody is waiting on yet (speculative agent calls). */
export interface CapacityProbe {
  hasSpareCapacity(): boolean;
}

/**
 * Utilisation (the busier of in-flight share and share of the minute's starts) under which a
 * speculative call is allowed: at half the quota a speculative call cannot push a real one into
 * the queue unless demand doubles within one call's time.
 */
export const SPARE_CAPACITY_UTILISATION = 0.5;

/**
 * The scheduler's view of spare capacity: nothing queued, not paused, the breaker closed, and both
 * the in-flight and the per-minute utilisation (against the effective, AIMD-reduced limits) under
 * the threshold. Read from `status()`, so the scheduler needs no hook of its own.
 */
export function schedulerCapacityProbe(
  scheduler: { status(): SchedulerStatus },
  maxUtilisation = SPARE_CAPACITY_UTILISATION,
): CapacityProbe {
  return {
    hasSpareCapacity() {
      const status = scheduler.status();
      if (status.queueLength > 0 || status.paused || status.breaker !== 'closed') return false;
      const utilisation = Math.max(
        status.activeRequests / Math.max(1, status.effective.maxConcurrency),
        status.currentRPM / Math.max(1, status.effective.maxRPM),
      );
      return utilisation < maxUtilisation;
    },
  };
}

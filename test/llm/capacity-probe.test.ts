import { schedulerCapacityProbe } from '../../api/llm/capacity-probe';
import type { SchedulerStatus } from '../../api/llm/llm-scheduler-options';

function probeWith(status: Partial<SchedulerStatus>) {
  const base = {
    queueLength: 0,
    paused: false,
    breaker: 'closed',
    activeRequests: 0,
    currentRPM: 0,
    effective: { maxConcurrency: 50, maxRPM: 500, maxTPM: 0 },
  };
  return schedulerCapacityProbe({ status: () => ({ ...base, ...status }) as SchedulerStatus });
}

describe('schedulerCapacityProbe (AGENT_PARALLEL=auto)', () => {
  test('an idle scheduler has spare capacity', () => {
    expect(probeWith({}).hasSpareCapacity()).toBe(true);
    expect(probeWith({ activeRequests: 24, currentRPM: 249 }).hasSpareCapacity()).toBe(true);
  });

  test.each<[string, Partial<SchedulerStatus>]>([
    ['a call is queued', { queueLength: 1 }],
    ['half the concurrency is in use', { activeRequests: 25 }],
    ['half the minute’s starts are spent', { currentRPM: 250 }],
    [
      'AIMD lowered the limits under the load',
      { activeRequests: 10, effective: { maxConcurrency: 20, maxRPM: 500, maxTPM: 0 } },
    ],
    ['an operator paused the queue', { paused: true }],
    ['the breaker is not closed', { breaker: 'half_open' }],
  ])('none when %s', (_name, status) => {
    expect(probeWith(status).hasSpareCapacity()).toBe(false);
  });
});

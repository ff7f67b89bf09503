import type { LimiterSnapshot } from '../../api/llm/limiter';
import { QuotaShare } from '../../api/llm/redis/quota-share';

function sharedAt(limits: LimiterSnapshot['limits']): { snapshot(): LimiterSnapshot } {
  return {
    snapshot: () => ({
      active: 0,
      startsLastMinute: 0,
      tokensLastMinute: 0,
      limits,
      configured: { concurrency: 50, rpm: 500, tpm: 0 },
      heldUntil: 0,
    }),
  };
}

describe('QuotaShare (a Redis outage: 1/N of each limit)', () => {
  test('rounds each share down, so N shares never add up to more than the quota', () => {
    const share = new QuotaShare({
      shared: sharedAt({ concurrency: 50, rpm: 500, tpm: 10_000 }),
      instances: () => 3,
    });
    expect(share.share()).toEqual({ concurrency: 16, rpm: 166, tpm: 3333 });
    expect(share.share().concurrency * 3).toBeLessThanOrEqual(50);
  });

  test('takes the lower of the shared and the local AIMD limits, and N of at least 1', () => {
    const share = new QuotaShare({
      shared: sharedAt({ concurrency: 50, rpm: 500 }),
      local: { limits: () => ({ concurrency: 20, rpm: 600 }) },
      instances: () => 0,
    });
    expect(share.instances()).toBe(1);
    expect(share.share()).toEqual({ concurrency: 20, rpm: 500 });
  });

  test('a share may be 0 (more instances than slots); the fallback limiter gets no concurrency cap of its own', () => {
    const share = new QuotaShare({ shared: sharedAt({ concurrency: 2, rpm: 500 }), instances: () => 3 });
    expect(share.share().concurrency).toBe(0);
    expect(share.limits().concurrency).toBe(Number.MAX_SAFE_INTEGER);
  });
});

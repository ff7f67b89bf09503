import { ALERT_CONDITIONS, type AlertSample } from '../../api/alerts/alert-conditions';

const base: AlertSample = {
  rateLimited: 0,
  queueLength: 0,
  providerBreaker: 'closed',
  openToolCircuits: [],
  p95WaitMs: 0,
  chatsEnded: 0,
  chatsFailed: 0,
  chatsCancelled: 0,
  chatsRefused: 0,
  openEndpoints: [],
  rateLimitedByEndpoint: { lite: 0, pro: 0 },
};
const condition = (name: string) => ALERT_CONDITIONS.find((entry) => entry.name === name)!;

describe('alerts name the endpoint', () => {
  test('TroupeEndpointUnavailable while one endpoint is open and another serves; not when all are', () => {
    const check = condition('TroupeEndpointUnavailable');
    const at = (sample: Partial<AlertSample>) => ({ at: 60_000, sample: { ...base, ...sample } });
    expect(check.check(at({}), at({}), 10_000)).toBeUndefined();
    expect(check.check(at({ openEndpoints: ['lite'], providerBreaker: 'half_open' }), at({}), 10_000)).toBe(
      'LLM endpoint circuit open: lite (its calls fall back along their routes)',
    );
    // Every endpoint open: TroupeProviderBreakerOpen says it (critical), not this one.
    expect(
      check.check(at({ openEndpoints: ['lite', 'pro'], providerBreaker: 'open' }), at({}), 10_000),
    ).toBeUndefined();
  });

  test('TroupeProvider429 says which endpoints answered 429', () => {
    const check = condition('TroupeProvider429');
    const start = { at: 0, sample: base };
    const now = {
      at: 120_000,
      sample: { ...base, rateLimited: 3, rateLimitedByEndpoint: { lite: 2, pro: 1 } },
    };
    expect(check.check(now, start, 10_000)).toMatch(/429 3 times in the last 2 minutes \(lite: 2, pro: 1\)/);
  });
});

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ManualClock } from '../../api/clock';
import { AppError } from '../../api/errors';
import { createLogger } from '../../api/logger';
import { ProviderError } from '../../api/llm/provider';
import { createEndpoints } from '../../api/llm/routing/create-endpoints';
import { isFallbackable } from '../../api/llm/routing/fallbackable';
import { RoutingGateway } from '../../api/llm/routing/routing-gateway';
import { testConfig } from '../../config';
import { FakeProvider, advance, maxInWindow, meta, request } from './helpers';

/** lite (RPM 5) first for the Host, pro (RPM 3) after it; one provider call takes 100 ms. */
const FILE = `
endpoints:
  - {name: lite, provider: sim, maxConcurrent: 10, maxRpm: 5}
  - {name: pro, provider: sim, maxConcurrent: 10, maxRpm: 3}
routes:
  host: [lite, pro]
  default: [pro]
`;

async function setup(env: Record<string, string> = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-routing-'));
  const file = path.join(dir, 'endpoints.yml');
  fs.writeFileSync(file, FILE);
  const config = testConfig({ LLM_ENDPOINTS_FILE: file, LLM_TIMEOUT: '30000', ...env });
  fs.rmSync(dir, { recursive: true, force: true });
  const clock = new ManualClock(0);
  const providers = { lite: new FakeProvider(clock), pro: new FakeProvider(clock) };
  providers.lite.latencyMs = 100;
  providers.pro.latencyMs = 100;
  const endpoints = await createEndpoints({
    config,
    clock,
    logger: createLogger('silent'),
    provider: (endpoint) => providers[endpoint.name as 'lite' | 'pro'],
  });
  const gateway = new RoutingGateway({ endpoints, routes: config.llm.routes, clock, callTimeoutMs: 30_000 });
  return { clock, providers, gateway };
}

describe('the routing gateway, on a manual clock', () => {
  test("a burst of Host calls: lite's RPM and pro's RPM each hold; calls lite cannot start in time go to pro", async () => {
    const { clock, providers, gateway } = await setup();
    const outcomes: Array<Promise<unknown>> = [];
    for (let index = 0; index < 12; index++) {
      outcomes.push(
        gateway
          .complete(meta('host', `user${index}`), request, { signal: new AbortController().signal })
          .then(
            (outcome) => outcome.endpoint?.name ?? 'none',
            (error: AppError) => error.code,
          ),
      );
      // Calls arrive a little apart, so each sees the queue the earlier ones left.
      await advance(clock, 200, 100);
    }
    await advance(clock, 180_000, 500);
    const served = await Promise.all(outcomes);
    const starts = (name: 'lite' | 'pro') => providers[name].calls.map((call) => call.startedAt);
    expect(maxInWindow(starts('lite'), 60_000)).toBeLessThanOrEqual(5);
    expect(maxInWindow(starts('pro'), 60_000)).toBeLessThanOrEqual(3);
    // Both endpoints served; lite first, pro once lite's line was longer than a call's 30 s.
    expect(served[0]).toBe('lite');
    expect(served).toContain('pro');
    const [lite] = gateway.endpoints();
    expect(lite.fallbacks.skipped).toBeGreaterThan(0);
  });

  test('a route of one endpoint is passed straight through (its own retries, no fallback)', async () => {
    const { clock, providers, gateway } = await setup();
    providers.pro.failures.push(new ProviderError('server', 'boom', { status: 500 }));
    const outcome = gateway.complete(meta('planner'), request, { signal: new AbortController().signal });
    // RPM 3 is spread out (one start per 20 s): the retry waits for its turn.
    await advance(clock, 60_000, 500);
    await expect(outcome).resolves.toMatchObject({
      endpoint: { name: 'pro', model: 'sim-pro' },
      attempts: 2,
    });
    expect(providers.lite.calls).toHaveLength(0);
  });

  test('a caller that aborts is not sent on to the next endpoint', async () => {
    const { clock, providers, gateway } = await setup();
    const controller = new AbortController();
    providers.lite.latencyMs = undefined;
    const outcome = gateway.complete(meta('host'), request, { signal: controller.signal });
    await advance(clock, 50);
    controller.abort(new AppError('cancelled'));
    await expect(outcome).rejects.toMatchObject({ code: 'cancelled' });
    await advance(clock, 1_000);
    expect(providers.pro.calls).toHaveLength(0);
  });
});

describe("the routing gateway's model routes (a /v1 call naming a model)", () => {
  test('a model goes to its endpoints only, a name to its endpoint, anything else to none', async () => {
    const { clock, providers, gateway } = await setup();
    const names = (model: string) => gateway.modelRoute(model).map((endpoint) => endpoint.config.name);
    expect(names('sim-lite')).toEqual(['lite']);
    expect(names('pro')).toEqual(['pro']);
    expect(names('gpt-4o')).toEqual([]);
    // A call naming lite's model is not sent down its class's route (the `default` one: pro).
    const outcome = gateway.complete(meta('planner', 'u1', { model: 'sim-lite' }), request, {
      signal: new AbortController().signal,
    });
    await advance(clock, 1000, 100);
    await expect(outcome).resolves.toMatchObject({ endpoint: { name: 'lite', model: 'sim-lite' } });
    expect(providers.pro.calls).toHaveLength(0);
    expect(gateway.cacheScope({ agentType: 'planner', model: 'sim-lite' }).model).toBe('sim-lite');
    await expect(
      gateway.complete(meta('planner', 'u1', { model: 'gpt-4o' }), request, {
        signal: new AbortController().signal,
      }),
    ).rejects.toMatchObject({ code: 'not_found' });
  });
});

describe('isFallbackable', () => {
  test.each([
    [new ProviderError('rate_limited', '429', { status: 429, retryAfterMs: 5_000 }), true],
    [new ProviderError('server', '500', { status: 500 }), true],
    [new ProviderError('network', 'ECONNRESET'), true],
    [new ProviderError('bad_request', 'InvalidParameter', { status: 400 }), false],
    // This endpoint's key is refused: another endpoint has its own key.
    [new ProviderError('auth', 'unauthorised', { status: 401 }), true],
    [
      new ProviderError('quota_exhausted', 'QuotaExceeded', { status: 429, unusable: 'quota_exhausted' }),
      true,
    ],
    [new AppError('provider_quota_exhausted'), true],
    [new AppError('provider_rate_limited'), true],
    [new AppError('llm_unavailable'), true],
    [new AppError('llm_timeout'), true],
    [new AppError('cancelled'), false],
    [new AppError('chat_timeout'), false],
    [new AppError('queue_timeout'), false],
    [new Error('anything else'), false],
  ])('%#: %s → %s', (error, expected) => {
    expect(isFallbackable(error)).toBe(expected);
  });
});

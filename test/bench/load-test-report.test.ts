import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { chatOutcomes, providerByPhase, summaryLines } from '../../scripts/bench/artillery-summary';
import {
  composeQuestion,
  countChatOutcome,
  markCacheScenario,
  markChatStart,
  variedQuestion,
} from '../../scripts/load-test-processor';

function recorder() {
  const emitted: Array<[string, string, number]> = [];
  return {
    emitted,
    events: {
      emit: (type: 'counter' | 'histogram', name: string, value: number) => emitted.push([type, name, value]),
    },
  };
}

describe('the Artillery load test reads true', () => {
  test('a completed chat is timed from request to done, apart from the time to first byte', () => {
    const { emitted, events } = recorder();
    const context = { vars: {} as Record<string, unknown> };
    markChatStart({}, context, events, () => undefined);
    context.vars.troupeChatStartedAt = Date.now() - 12_000;
    const body =
      'event: run\ndata: {}\n\nevent: delta\ndata: {"agent":"host","text":"x"}\n\nevent: done\ndata: {}\n\n';
    countChatOutcome({}, { statusCode: 200, headers: {}, body }, context, events, () => undefined);
    expect(emitted[0]).toEqual(['counter', 'troupe.chat.completed', 1]);
    expect(emitted[1][0]).toBe('histogram');
    expect(emitted[1][1]).toBe('troupe.chat.completed_ms');
    expect(emitted[1][2]).toBeGreaterThanOrEqual(12_000);

    const refused = recorder();
    countChatOutcome(
      {},
      { statusCode: 503, headers: { 'retry-after': '3' } },
      context,
      refused.events,
      () => undefined,
    );
    expect(refused.emitted).toEqual([
      ['counter', 'troupe.chat.refused', 1],
      ['counter', 'troupe.chat.refused_with_retry_after', 1],
    ]);
  });

  test('the wrapper closes with completed / refused / failed, the chat time and the 429s', () => {
    const report = {
      aggregate: {
        counters: {
          'http.codes.200': 95,
          'http.codes.503': 1000,
          'http.codes.500': 1,
          'troupe.chat.completed': 92,
          'troupe.chat.refused': 1000,
          'troupe.chat.refused_with_retry_after': 1000,
          'troupe.chat.error.llm_timeout': 2,
          'troupe.chat.incomplete': 1,
          'errors.ETIMEDOUT': 4,
        },
        summaries: {
          'http.response_time': { count: 1096, median: 2, p95: 13.9, p99: 34.8, max: 79 },
          'troupe.chat.completed_ms': { count: 92, median: 14_200, p95: 25_300, p99: 28_900, max: 29_500 },
        },
      },
    };
    expect(chatOutcomes(report)).toMatchObject({ completed: 92, refused: 1000, failed: 8 });
    expect(summaryLines(report, { requests: 410, accepted: 410, rejected429: 0 })).toEqual([
      'chats: 92 completed, 1000 refused at once (1000 with Retry-After), 8 failed (http_500 1, llm_timeout 2, incomplete 1, ETIMEDOUT 4)',
      'completed-chat time (request → done): median 14.2 s, p95 25.3 s, p99 28.9 s, max 29.5 s',
      "(Artillery's http.response_time is the time to the response headers — a stream's first byte, or the 503: median 2 ms, p95 13.9 ms)",
      'provider (its own counters): 410 calls, 410 accepted, 0 answered 429',
    ]);
    expect(summaryLines({}, undefined)).toEqual([
      'chats: 0 completed, 0 refused at once (0 with Retry-After), 0 failed',
      'completed-chat time: no chat completed',
      'provider: unknown (no sim-llm counters)',
    ]);
  });

  test("every user of the quota scenario asks its own question; the cache scenario asks the file's one", () => {
    const questions = new Set(Array.from({ length: 2000 }, () => variedQuestion()));
    expect(questions.size).toBe(2000);
    const file = parseYaml(fs.readFileSync(path.join(__dirname, '../../load-test.yml'), 'utf8')) as {
      scenarios: Array<{ name: string; weight: number; flow: Array<Record<string, unknown>> }>;
    };
    const [quota, cache] = file.scenarios;
    expect(quota.flow[0]).toEqual({ function: 'composeQuestion' });
    expect((quota.flow[1].post as { json: { message: string } }).json.message).toBe('{{ question }}');
    expect(cache.flow[0]).toEqual({ function: 'markCacheScenario' });
    expect((cache.flow[1].post as { json: { message: string } }).json.message).not.toContain('{{');
    expect(quota.weight).toBeGreaterThan(cache.weight);

    const context = { vars: {} as Record<string, unknown> };
    composeQuestion(context, {}, () => undefined);
    expect(typeof context.vars.question).toBe('string');
    const { emitted, events } = recorder();
    countChatOutcome({}, { statusCode: 503, headers: {} }, context, events, () => undefined);
    expect(emitted).toContainEqual(['counter', 'troupe.scenario.quota.refused', 1]);

    const cached = { vars: {} as Record<string, unknown> };
    markCacheScenario(cached, {}, () => undefined);
    const done = recorder();
    countChatOutcome(
      {},
      { statusCode: 200, headers: {}, body: 'event: done\ndata: {}\n\n' },
      cached,
      done.events,
      () => undefined,
    );
    expect(done.emitted).toContainEqual(['counter', 'troupe.scenario.cache.completed', 1]);
    expect(
      summaryLines(
        {
          aggregate: {
            counters: {
              'troupe.scenario.quota.completed': 7,
              'troupe.scenario.quota.refused': 90,
              'troupe.scenario.cache.completed': 11,
            },
          },
        },
        undefined,
      ),
    ).toEqual(
      expect.arrayContaining([
        '  quota scenario: 7 completed, 90 refused, 0 failed',
        '  cache scenario: 11 completed, 0 refused, 0 failed',
      ]),
    );
  });

  test('a chat refused while it waited in line (an overloaded event) counts as refused, not failed', () => {
    const context = { vars: {} as Record<string, unknown> };
    composeQuestion(context, {}, () => undefined);
    const { emitted, events } = recorder();
    const body =
      'event: run\ndata: {}\n\nevent: queued\ndata: {}\n\nevent: error\ndata: {"code":"overloaded"}\n\n';
    countChatOutcome({}, { statusCode: 200, headers: {}, body }, context, events, () => undefined);
    expect(emitted).toEqual([
      ['counter', 'troupe.chat.error.overloaded', 1],
      ['counter', 'troupe.scenario.quota.refused', 1],
    ]);
    const report = {
      aggregate: { counters: { 'troupe.chat.error.overloaded': 486, 'troupe.chat.error.llm_timeout': 1 } },
    };
    expect(chatOutcomes(report)).toMatchObject({ refusedWhileWaiting: 486, failed: 1 });
    expect(summaryLines(report, undefined)[0]).toBe(
      'chats: 0 completed, 0 refused at once (0 with Retry-After), 486 refused while waiting in line (overloaded event), 1 failed (llm_timeout 1)',
    );
  });

  test("the provider's calls and 429s are split by phase, from its own counters read during the run", () => {
    const reading = (at: number, requests: number, rejected429 = 0) => ({
      at,
      stats: { requests, accepted: requests - rejected429, rejected429 },
    });
    const phases = [
      { name: 'warm-up', duration: 10, arrivalRate: 10 },
      { name: 'sustained', duration: 20, arrivalRate: 50 },
    ];
    // Artillery started the phases at 2 s and 12 s; the last reading is 10 s after the arrivals end.
    const readings = [
      reading(1000, 0),
      reading(2000, 0),
      reading(12_000, 40),
      reading(32_000, 200, 3),
      reading(42_000, 260, 3),
    ];
    expect(providerByPhase(phases, readings, [2000, 12_000])).toEqual([
      { name: 'warm-up', durationS: 10, arrivalRate: 10, windowS: 10, calls: 40, rejected429: 0 },
      { name: 'sustained', durationS: 20, arrivalRate: 50, windowS: 30, calls: 220, rejected429: 3 },
    ]);
    const lines = summaryLines({}, readings.at(-1)!.stats, providerByPhase(phases, readings, [2000, 12_000]));
    expect(lines).toContain('  warm-up, 10 s: 40 calls (240/min), 0 answered 429');
    expect(lines).toContain('  sustained, 20 s + 10 s draining: 220 calls (440/min), 3 answered 429');
    // Without Artillery's phase lines the phases start where the ones before them add up to: the
    // boundary is then at 10 s, before the reading of 40 calls at 12 s.
    expect(providerByPhase(phases, readings).map((phase) => phase.calls)).toEqual([0, 260]);
  });
});

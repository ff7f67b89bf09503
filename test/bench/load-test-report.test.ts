import { chatOutcomes, summaryLines } from '../../scripts/bench/artillery-summary';
import { countChatOutcome, markChatStart } from '../../scripts/load-test-processor';

function recorder() {
  const emitted: Array<[string, string, number]> = [];
  return {
    emitted,
    events: {
      emit: (type: 'counter' | 'histogram', name: string, value: number) => emitted.push([type, name, value]),
    },
  };
}

describe("the brief's Artillery load test reads true", () => {
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
    expect(summaryLines(report, 0)).toEqual([
      'chats: 92 completed, 1000 refused at once (1000 with Retry-After), 8 failed (http_500 1, llm_timeout 2, incomplete 1, ETIMEDOUT 4)',
      'completed-chat time (request → done): median 14.2 s, p95 25.3 s, p99 28.9 s, max 29.5 s',
      "(Artillery's http.response_time is the time to the response headers — a stream's first byte, or the 503: median 2 ms, p95 13.9 ms)",
      'provider 429s: 0',
    ]);
    expect(summaryLines({}, undefined)).toEqual([
      'chats: 0 completed, 0 refused at once (0 with Retry-After), 0 failed',
      'completed-chat time: no chat completed',
      'provider 429s: unknown (no sim-llm counters)',
    ]);
  });
});

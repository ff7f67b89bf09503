import { buildReport, type ReportInput } from '../../scripts/bench/bench-report';
import { renderChart } from '../../scripts/bench/bench-chart';
import { BenchArgumentError, parseBenchArgs } from '../../scripts/bench/bench-options';
import { alignColumns, formatComparison, formatMs, formatReportTable } from '../../scripts/bench/bench-table';
import type { ChatRecord } from '../../scripts/bench/chat-client';
import { composeMessage, expectedCallsPerChat, pickKind } from '../../scripts/bench/chat-messages';
import { splitPlan } from '../../scripts/bench/load-group';
import { zeroCounters, type LoadPlan } from '../../scripts/bench/load-driver';
import { parseCpuSeconds, statusField, type Sample } from '../../scripts/bench/resource-sampler';
import { applyScale, BRIEF_QUOTA, SCENARIOS, type RunSpec } from '../../scripts/bench/scenarios';
import { SseParser, type ServerSentEvent } from '../../scripts/bench/sse-parser';
import {
  bucketize,
  histogram,
  niceStep,
  percentile,
  quotaBound,
  seededRandom,
  summarize,
  unservableShare,
} from '../../scripts/bench/statistics';
import { terminalEvent } from '../../scripts/load-test-processor';
import { wantsSearch } from '../../api/llm/sim/sim-model';

// The pure parts of the load benchmark (scripts/bench): no servers, no sockets, no timing.

describe('percentiles', () => {
  test('nearest rank: p50 of 1..10 is 5, p95 and p99 are 10', () => {
    const values = [7, 3, 10, 1, 5, 9, 2, 8, 4, 6];
    expect(percentile(values, 50)).toBe(5);
    expect(percentile(values, 95)).toBe(10);
    expect(percentile(values, 99)).toBe(10);
    expect(percentile(values, 0)).toBe(1);
    expect(percentile(values, 100)).toBe(10);
  });

  test('p99 of 1..1000 is 990, never an interpolated value', () => {
    const values = Array.from({ length: 1000 }, (_, index) => index + 1);
    expect(percentile(values, 99)).toBe(990);
    expect(percentile(values, 95)).toBe(950);
    expect(percentile([1, 100], 50)).toBe(1);
  });

  test('summaries skip non-finite values and are empty without values', () => {
    expect(summarize([])).toEqual({ count: 0 });
    expect(summarize([NaN, 4, 2])).toEqual({ count: 2, mean: 3, p50: 2, p95: 4, p99: 4, max: 4 });
  });
});

describe('the quota bound mu = min(R/60, C/L)', () => {
  test('the brief quota with 2 s calls is bound by RPM: 500/60 = 8.33 calls/s', () => {
    const bound = quotaBound({ rpm: 500, concurrency: 50 }, 2000);
    expect(bound.rpmBound).toBeCloseTo(8.333, 3);
    expect(bound.concurrencyBound).toBe(25);
    expect(bound.mu).toBeCloseTo(8.333, 3);
    expect(bound.binding).toBe('rpm');
  });

  test('slow calls make concurrency bind: C=20, L=4 s gives 5 calls/s under 600 rpm', () => {
    const bound = quotaBound({ rpm: 600, concurrency: 20 }, 4000);
    expect(bound.mu).toBe(5);
    expect(bound.binding).toBe('concurrency');
  });

  test('without a measured latency the bound is R/60', () => {
    expect(quotaBound({ rpm: 120, concurrency: 1 }, undefined)).toEqual({
      rpmBound: 2,
      mu: 2,
      binding: 'rpm',
    });
  });

  test('scaling keeps the ratio of C/L to R/60', () => {
    const spec: RunSpec = { ...SCENARIOS.phase1.runs[0], scale: 4 };
    const scaled = applyScale(spec);
    const unscaledCallMs = BRIEF_QUOTA.latencyMs + (75 / BRIEF_QUOTA.tps) * 1000;
    const scaledCallMs = scaled.quota.latencyMs + (75 / scaled.quota.tps) * 1000;
    const before = quotaBound(BRIEF_QUOTA, unscaledCallMs);
    const after = quotaBound(scaled.quota, scaledCallMs);
    expect(after.mu / before.mu).toBeCloseTo(4, 5);
    expect(after.concurrencyBound! / after.rpmBound).toBeCloseTo(
      before.concurrencyBound! / before.rpmBound,
      5,
    );
    expect(scaled.troupeEnv.LLM_MAX_RPM).toBe('2000');
    expect(scaled.troupeEnv.LLM_MAX_CONCURRENT).toBe('50');
    expect(scaled.troupeEnv.LLM_TIMEOUT).toBe('15000');
    expect(scaled.troupeEnv.LLM_CHAT_TARGET_MS).toBe('7500');
    expect(scaled.thinkMs).toBe(15_000);
  });

  test('overload arrives at twice the chats the quota completes', () => {
    const scaled = applyScale({ ...SCENARIOS.overload.runs[0], scale: 1 });
    const capacity = quotaBound(BRIEF_QUOTA, 2000).mu / expectedCallsPerChat();
    expect(scaled.arrivalRatePerS).toBeCloseTo(2 * capacity, 5);
  });

  test('the error-rate floor a response-time target implies for closed-loop users', () => {
    // 300 users thinking 60 s, served within 40 s, ask for 3 chats/s; a quota that completes 1.5 leaves half unserved.
    expect(unservableShare(300, 60, 40, 1.5)).toBeCloseTo(0.5, 5);
    expect(unservableShare(100, 60, 40, 1.5)).toBe(0);
  });
});

describe('bucketing and histograms', () => {
  test('bucketize counts per bucket and drops times outside', () => {
    expect(bucketize([0, 999, 1000, 2500, -1, 3000], 0, 1000, 3)).toEqual([2, 1, 1]);
  });

  test('histogram bins use a readable width and cover the maximum', () => {
    const result = histogram([100, 200, 2900], 30);
    expect(result.binMs).toBe(100);
    expect(result.counts.reduce((sum, count) => sum + count, 0)).toBe(3);
    expect(result.counts[result.counts.length - 1]).toBe(1);
    expect(histogram([])).toEqual({ binMs: 1, counts: [] });
  });

  test('niceStep rounds up to 1, 2 or 5 times a power of ten', () => {
    expect(niceStep(0.7)).toBe(1);
    expect(niceStep(13)).toBe(20);
    expect(niceStep(430)).toBe(500);
    expect(niceStep(5000)).toBe(5000);
  });

  test('the seeded generator repeats itself', () => {
    const first = seededRandom(42);
    const second = seededRandom(42);
    const draws = Array.from({ length: 5 }, () => first());
    expect(Array.from({ length: 5 }, () => second())).toEqual(draws);
    for (const draw of draws) expect(draw).toBeGreaterThanOrEqual(0);
  });
});

describe('SSE parsing', () => {
  test('events split across chunks, CRLF endings, comments and multi-line data', () => {
    const events: ServerSentEvent[] = [];
    const parser = new SseParser((event) => events.push(event));
    const stream =
      'id: 1\r\nevent: run\r\ndata: {"runId":"r"}\r\n\r\n: ping\n\nevent: delta\ndata: a\ndata: b\n\nid: 3\nevent: done\ndata: {}\n\n';
    for (let index = 0; index < stream.length; index += 3) parser.feed(stream.slice(index, index + 3));
    expect(events).toEqual([
      { event: 'run', data: '{"runId":"r"}', id: '1' },
      { event: 'delta', data: 'a\nb', id: '1' },
      { event: 'done', data: '{}', id: '3' },
    ]);
    expect(parser.comments).toBe(1);
  });

  test("the Artillery processor finds a stream's terminal event", () => {
    expect(
      terminalEvent('id: 1\nevent: run\ndata: {}\n\nid: 9\nevent: done\ndata: {"answer":"x"}\n\n'),
    ).toEqual({ event: 'done' });
    expect(
      terminalEvent('event: run\ndata: {}\n\nevent: error\ndata: {"code":"llm_timeout","message":"m"}\n\n'),
    ).toEqual({ event: 'error', code: 'llm_timeout' });
    expect(terminalEvent('event: run\ndata: {}\n\n')).toBeUndefined();
  });
});

describe('messages', () => {
  test('each kind costs what the simulated model makes it cost', () => {
    for (let index = 0; index < 50; index++) {
      const u = index / 50;
      const long = composeMessage('long', u);
      expect(long.split(/\s+/).length).toBeGreaterThanOrEqual(8);
      expect(wantsSearch(long)).toBe(false);
      expect(composeMessage('short', u).split(/\s+/).length).toBeLessThan(8);
      expect(wantsSearch(composeMessage('search', u))).toBe(true);
    }
    expect(expectedCallsPerChat()).toBeCloseTo(4.45, 5);
    expect(pickKind(0.1)).toBe('long');
    expect(pickKind(0.8)).toBe('short');
    expect(pickKind(0.95)).toBe('search');
  });
});

describe('options and plans', () => {
  test('flags override every run of the scenario', () => {
    const options = parseBenchArgs(['--scenario', 'priority', '--users', '50', '--rpm=900', '--scale', '2'])!;
    expect(options.scenario.runs).toHaveLength(2);
    for (const run of options.scenario.runs) {
      expect(run.users).toBe(50);
      expect(run.quota.rpm).toBe(900);
      expect(run.scale).toBe(2);
    }
    expect(options.scenario.runs[1].troupeEnv.LLM_PRIORITY_ORDER).toBe('reporter,critic,planner,host');
  });

  test('bad flags are named', () => {
    expect(() => parseBenchArgs(['--scenario', 'nope'])).toThrow(/unknown scenario "nope"/);
    expect(() => parseBenchArgs(['--scenario', 'smoke', '--users', '-3'])).toThrow(BenchArgumentError);
    expect(() => parseBenchArgs(['--scenario', 'smoke', '--frobnicate'])).toThrow(/unknown flag/);
    expect(() => parseBenchArgs([])).toThrow(/--scenario is required/);
    expect(parseBenchArgs(['--help'])).toBeUndefined();
  });

  test('a plan split over workers keeps every user once, with distinct ids', () => {
    const plan: LoadPlan = {
      url: 'http://x',
      arrival: 'closed',
      users: 10_001,
      userOffset: 0,
      thinkMs: 1,
      rampMs: 1,
      arrivalRatePerS: 8,
      durationMs: 1,
      timeoutMs: 1,
      seed: 1,
      maxOpen: 18_000,
      startAt: 0,
    };
    const shares = splitPlan(plan, 2);
    expect(shares.map((share) => share.users)).toEqual([5001, 5000]);
    expect(shares.map((share) => share.userOffset)).toEqual([0, 5001]);
    expect(shares.map((share) => share.arrivalRatePerS)).toEqual([4, 4]);
    expect(new Set(shares.map((share) => share.seed)).size).toBe(2);
  });
});

describe('/proc readings', () => {
  test('CPU seconds come from fields 14 and 15, whatever the command name holds', () => {
    const stat =
      '1234 (node (weird) name) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 11 0 100 1000 200';
    expect(parseCpuSeconds(stat)).toBe(3);
    expect(statusField('Name:\tnode\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n', 'VmRSS')).toBe(102400);
  });
});

function record(overrides: Partial<ChatRecord>): ChatRecord {
  return {
    user: 0,
    kind: 'long',
    sentAt: 0,
    endedAt: 0,
    outcome: 'completed',
    calls: 0,
    callTimes: [],
    processMs: 0,
    llmWaitMs: 0,
    ...overrides,
  };
}

function sample(at: number, accepted: number, rssKb = 100 * 1024): Sample {
  return {
    at,
    troupe: { rssKb, peakRssKb: rssKb, cpuPercent: 50 },
    sim: {
      cpuPercent: 10,
      stats: {
        requests: accepted,
        accepted,
        rejected429: 0,
        inFlight: 0,
        maxInFlight: 50,
        completed: accepted,
        aborted: 0,
      },
    },
    loadCpuPercent: 5,
    counters: zeroCounters(),
  };
}

/** 100 s of overload on a 600 rpm quota (10 calls/s): 250 chats of 4 calls completed at the bound, 200 refused fast. */
function overloadInput(): ReportInput {
  const spec: RunSpec = {
    ...SCENARIOS.overload.runs[0],
    scale: 1,
    durationS: 100,
    warmupS: 0,
    quota: { rpm: 600, concurrency: 50, latencyMs: 500, tps: 50 },
  };
  const records: ChatRecord[] = [];
  for (let index = 0; index < 250; index++) {
    const sentAt = index * 400;
    records.push(
      record({
        sentAt,
        endedAt: sentAt + 8000,
        status: 200,
        firstEventMs: 5,
        firstTokenMs: 600,
        completionMs: 8000,
        calls: 4,
        callTimes: [1, 2, 3, 4].map((call) => sentAt + call * 100 - 1),
        processMs: 4 * 2000,
      }),
    );
  }
  for (let index = 0; index < 200; index++) {
    records.push(
      record({
        sentAt: index * 500,
        endedAt: index * 500 + 4,
        outcome: 'refused',
        status: 503,
        code: 'overloaded',
        headersMs: 4 + (index % 10),
        retryAfterMs: 2000,
      }),
    );
  }
  records.push(
    record({
      sentAt: 1000,
      endedAt: 1500,
      outcome: 'failed',
      status: 200,
      code: 'llm_unavailable',
      calls: 1,
      callTimes: [1400],
    }),
  );
  return {
    scenario: 'overload',
    summary: SCENARIOS.overload.summary,
    command: 'npm run bench -- --scenario overload',
    machine: { cpus: 2, cpuModel: 'test', memoryGiB: 24, node: 'v20', os: 'Linux' },
    run: applyScale(spec),
    targetUrl: 'http://127.0.0.1:1',
    managed: true,
    startAt: 0,
    warmupEndAt: 0,
    arrivalsEndAt: 100_000,
    endedAt: 108_000,
    records,
    samples: Array.from({ length: 109 }, (_, second) => sample(second * 1000, Math.min(1010, second * 10))),
    baseline: sample(-1000, 0, 80 * 1024),
    sim: {
      requests: 1010,
      accepted: 1010,
      rejected429: 0,
      inFlight: 0,
      maxInFlight: 50,
      completed: 1000,
      aborted: 10,
    },
  };
}

describe('the report', () => {
  test('counts, goodput against the bound, waste and refusals', () => {
    const report = buildReport(overloadInput());
    expect(report.chats).toMatchObject({
      attempted: 451,
      completed: 250,
      refused: 200,
      failed: 1,
      timedOut: 0,
      admitted: 251,
      admittedTimedOut: 0,
    });
    // L = 2 s, C/L = 25 > R/60 = 10: rpm binds; 1000 useful calls in 100 s = 10 calls/s = the bound.
    expect(report.goodput.bound.binding).toBe('rpm');
    expect(report.goodput.bound.mu).toBe(10);
    expect(report.goodput.callsPerS).toBeCloseTo(10, 5);
    expect(report.goodput.ratio).toBeCloseTo(1, 5);
    expect(report.goodput.demandExceedsBound).toBe(true);
    expect(report.waste).toEqual({ calls: 10, ratio: 10 / 1010, usefulCalls: 1000 });
    expect(report.refusals.withRetryAfter).toBe(200);
    expect(report.latencyMs.refusal.max).toBe(13);
    expect(report.latencyMs.completion.p95).toBe(8000);
    expect(report.server.baselineRssMb).toBe(80);
  });

  test('overload targets: admitted timeouts, refusal latency, Retry-After, zero 429s, waste', () => {
    const targets = Object.fromEntries(
      buildReport(overloadInput()).targets.map((target) => [target.name, target]),
    );
    expect(targets['provider 429s'].pass).toBe(true);
    expect(targets['goodput / bound'].pass).toBe(true);
    expect(targets['quota waste'].pass).toBe(true);
    expect(targets['admitted chats timed out'].pass).toBe(true);
    expect(targets['refusal latency (max)'].pass).toBe(true);
    expect(targets['refusals with Retry-After'].pass).toBe(true);
  });

  test('a slow refusal, a missing Retry-After and an admitted timeout are misses', () => {
    const input = overloadInput();
    input.records.push(record({ outcome: 'refused', status: 503, code: 'overloaded', headersMs: 150 }));
    input.records.push(record({ outcome: 'timed_out', status: 200, code: 'queue_timeout' }));
    const targets = Object.fromEntries(buildReport(input).targets.map((target) => [target.name, target]));
    expect(targets['refusal latency (max)'].pass).toBe(false);
    expect(targets['refusals with Retry-After'].pass).toBe(false);
    expect(targets['admitted chats timed out'].pass).toBe(false);
  });

  test('goodput is not judged when demand stays below the bound', () => {
    const input = overloadInput();
    input.records = input.records
      .filter((entry, index) => entry.outcome !== 'completed' || index % 4 === 0)
      .filter((entry) => entry.outcome !== 'refused');
    const report = buildReport(input);
    expect(report.goodput.demandExceedsBound).toBe(false);
    const goodput = report.targets.find((target) => target.name === 'goodput / bound')!;
    expect(goodput.pass).toBeUndefined();
    expect(goodput.note).toMatch(/below the bound/);
  });

  test('the table names every figure issue 6 asks for, and the chart is one SVG', () => {
    const report = buildReport(overloadInput());
    const table = formatReportTable(report);
    for (const text of [
      'completed 250',
      'refused (503, or while waiting) 200',
      'failed 1',
      'timed out 0',
      '429s 0',
      'LLM goodput',
      'min(R/60 = 10.00, C/L = 25.00) = 10.00',
      'ratio 100.0 %',
      'quota waste',
      'first event',
      'first token',
      'completion',
      'refusal (503)',
      'Retry-After',
      'RSS',
      'CPU',
      'PASS provider 429s',
      'demand exceeds it',
    ]) {
      expect(table).toContain(text);
    }
    const svg = renderChart(report);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.trim().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('bound mu = 10.00 calls/s');
    expect(formatComparison([report, { ...report, variant: 'other' }]).split('\n')[0]).toMatch(
      /2x capacity\s+other/,
    );
  });

  test("the server's event-loop stalls are reported with the GC time inside them", () => {
    const input = overloadInput();
    input.diagnostics = [
      { at: -500, loopMaxMs: 900, loopP99Ms: 900, gc: [] },
      { at: 10_000, loopMaxMs: 20, loopP99Ms: 12, gc: [{ at: 9_500, ms: 15, kind: 1 }] },
      { at: 42_000, loopMaxMs: 130, loopP99Ms: 40, gc: [{ at: 41_400, ms: 110, kind: 4 }] },
    ];
    const loop = buildReport(input).server.eventLoop!;
    // The line before the first arrival (start-up) does not count.
    expect(loop.maxDelayMs).toBe(130);
    expect(loop.worstP99Ms).toBe(40);
    expect(loop.gcPausesOver50Ms).toBe(1);
    expect(loop.longestGcMs).toBe(110);
    expect(loop.stalls).toEqual([{ t: 42, delayMs: 130, gcMs: 110 }]);
    expect(formatReportTable(buildReport(input))).toContain('stalls ≥ 100 ms at 42 s (130 ms, GC 110 ms)');
  });

  test('column alignment and durations', () => {
    expect(
      alignColumns([
        ['a', '1'],
        ['long', '100'],
      ]),
    ).toBe('a       1\nlong  100');
    expect(formatMs(3.25)).toBe('3.3 ms');
    expect(formatMs(250)).toBe('250 ms');
    expect(formatMs(1234)).toBe('1.23 s');
    expect(formatMs(65_000)).toBe('65.0 s');
    expect(formatMs(undefined)).toBe('–');
  });
});

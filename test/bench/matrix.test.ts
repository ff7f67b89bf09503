import fc from 'fast-check';
import { BenchArgumentError, parseBenchArgs } from '../../scripts/bench/bench-options';
import type { BenchReport } from '../../scripts/bench/bench-report';
import type { ChatRecord } from '../../scripts/bench/chat-client';
import {
  CALLS_PER_KIND,
  composeMessage,
  expectedCallsPerChat,
  MESSAGE_MIX,
  pickKind,
  type MessageKind,
} from '../../scripts/bench/chat-messages';
import {
  generateMatrix,
  MATRIX_DEFAULT_COUNT,
  MATRIX_RANGES,
  workloadRunSpec,
  type MatrixWorkload,
} from '../../scripts/bench/matrix';
import { selectWorkloads, workloadLabel } from '../../scripts/bench/matrix-selection';
import { demandAt, formatMatrixTable, matrixResult } from '../../scripts/bench/matrix-results';
import { countFalseRefusals, quotaForcedRefusals } from '../../scripts/bench/false-refusals';
import { applyScale } from '../../scripts/bench/scenarios';
import { quotaBound } from '../../scripts/bench/statistics';
import { asksForSecondReview, wantsSearch } from '../../api/llm/sim/sim-model';

// The matrix scenario's generator and verdicts: pure, no servers, no timing.

const nominalCallMs = (workload: MatrixWorkload) =>
  workload.quota.latencyMs + (75 / workload.quota.tps) * 1000;

describe('matrix generator', () => {
  test('the same seed gives the same workloads; another seed other ones', () => {
    expect(generateMatrix(1)).toEqual(generateMatrix(1));
    expect(generateMatrix(42)).toEqual(generateMatrix(42));
    expect(generateMatrix(2)).not.toEqual(generateMatrix(1));
  });

  test(`${MATRIX_DEFAULT_COUNT} workloads by default, with distinct ids and load seeds`, () => {
    const workloads = generateMatrix(1);
    expect(workloads.length).toBeGreaterThanOrEqual(24);
    expect(new Set(workloads.map((workload) => workload.id)).size).toBe(workloads.length);
    expect(new Set(workloads.map((workload) => workload.loadSeed)).size).toBe(workloads.length);
  });

  test('every dimension is covered, whatever the seed', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), (seed) => {
        const workloads = generateMatrix(seed);
        const values = <T>(pick: (workload: MatrixWorkload) => T) => new Set(workloads.map(pick));
        // Arrival shapes, binding terms, instance counts: all of them.
        expect(values((workload) => workload.arrival)).toEqual(new Set(['burst', 'ramp', 'open']));
        expect(values((workload) => workload.binding)).toEqual(new Set(['rpm', 'concurrency']));
        expect(values((workload) => workload.instances)).toEqual(new Set([1, 3]));
        for (const workload of workloads) {
          // The named term really is the binding one.
          expect(quotaBound(workload.quota, nominalCallMs(workload)).binding).toBe(workload.binding);
          // Calls of 0.1–4 s (rounding of first token and speed aside).
          expect(workload.callMs).toBeGreaterThanOrEqual(95);
          expect(workload.callMs).toBeLessThanOrEqual(4050);
          expect(workload.callsPerChat).toBeGreaterThanOrEqual(4);
          expect(workload.callsPerChat).toBeLessThanOrEqual(9);
          expect(workload.searchShare).toBeGreaterThanOrEqual(0);
          expect(workload.searchShare).toBeLessThanOrEqual(1);
          const shares = Object.values(workload.mix).reduce((sum, share) => sum + share, 0);
          expect(shares).toBeCloseTo(1, 9);
          expect(workload.chats).toBeGreaterThanOrEqual(1);
          if (workload.arrival !== 'burst') {
            expect(workload.arrivalS).toBeGreaterThanOrEqual(MATRIX_RANGES.arrivalS[0]);
            expect(workload.arrivalS).toBeLessThanOrEqual(MATRIX_RANGES.maxArrivalS);
          }
          // Capacity is min(R/60, C/L) / k.
          expect(workload.capacityChatsPerS).toBeCloseTo(
            quotaBound(workload.quota, nominalCallMs(workload)).mu / workload.callsPerChat,
            2,
          );
        }
        const callMs = workloads.map((workload) => workload.callMs);
        expect(Math.min(...callMs)).toBeLessThanOrEqual(110);
        expect(Math.max(...callMs)).toBeGreaterThanOrEqual(3900);
        const calls = workloads.map((workload) => workload.callsPerChat);
        expect(Math.min(...calls)).toBe(4);
        expect(Math.max(...calls)).toBe(9);
        const searching = workloads.map((workload) => workload.searchShare);
        expect(Math.min(...searching)).toBe(0);
        expect(Math.max(...searching)).toBe(1);
        // Each arrival shape meets demand well below capacity and well above it.
        for (const arrival of ['burst', 'ramp', 'open']) {
          const loads = workloads.filter((workload) => workload.arrival === arrival).map((w) => w.load);
          expect(Math.min(...loads)).toBeLessThanOrEqual(0.45);
          expect(Math.max(...loads)).toBeGreaterThanOrEqual(2.5);
        }
        const open = workloads.filter((workload) => workload.arrival === 'open').map((w) => w.load);
        expect(Math.min(...open)).toBeCloseTo(0.3, 2);
        expect(Math.max(...open)).toBeCloseTo(3, 2);
      }),
      { numRuns: 50 },
    );
  });

  test('every workload runs cold and is replayed with admission off', () => {
    for (const workload of generateMatrix(3)) {
      const spec = workloadRunSpec(workload);
      expect(spec.coldStart).toBe(true);
      expect(spec.replay).toBe(true);
      expect(spec.arrival).toBe(workload.arrival);
      expect(spec.mix).toEqual(workload.mix);
      expect(spec.cluster?.instances ?? 1).toBe(workload.instances);
      expect(spec.troupeEnv.AGENT_PARALLEL).toBe(workload.agentParallel ? 'on' : 'off');
      // The run's nominal capacity is the workload's, scaled.
      expect(applyScale(spec).nominalCapacityChatsPerS).toBeCloseTo(
        workload.capacityChatsPerS * workload.scale,
        1,
      );
    }
  });

  test('open arrivals run at load × capacity; a ramp peaks at it; a burst fills the deadline at it', () => {
    for (const workload of generateMatrix(5)) {
      const asRun = workload.capacityChatsPerS * workload.scale;
      if (workload.arrival === 'open') {
        expect(workload.arrivalRatePerS! / workload.capacityChatsPerS).toBeCloseTo(workload.load, 2);
        expect(workload.chats).toBe(Math.round(workload.load * asRun * workload.arrivalS));
      } else if (workload.arrival === 'ramp') {
        expect((2 * workload.chats) / workload.arrivalS / asRun).toBeCloseTo(workload.load, 2);
      } else {
        const horizonS = 60 - (workload.callsPerChat * workload.callMs) / 1000;
        expect(workload.chats / (workload.capacityChatsPerS * horizonS)).toBeCloseTo(workload.load, 1);
      }
    }
  });

  test('--quick picks one workload per arrival shape, one of them on 3 instances; --limit and --only', () => {
    const workloads = generateMatrix(1);
    const quick = selectWorkloads(workloads, { quick: true });
    expect(quick).toHaveLength(3);
    expect(new Set(quick.map((workload) => workload.arrival))).toEqual(new Set(['burst', 'ramp', 'open']));
    expect(quick.some((workload) => workload.instances === 3)).toBe(true);
    expect(selectWorkloads(workloads, { limit: 2 })).toEqual(workloads.slice(0, 2));
    expect(selectWorkloads(workloads, { only: 'w07' }).map((workload) => workload.id)).toEqual(['w07']);
    expect(workloadLabel(workloads[6])).toMatch(/^w07 /);
  });
});

describe('matrix options', () => {
  test('--scenario matrix --seed S runs the seed’s workloads; --limit and --quick choose among them', () => {
    const options = parseBenchArgs(['--scenario', 'matrix', '--seed', '9'])!;
    expect(options.scenario.name).toBe('matrix');
    expect(options.scenario.runs.map((run) => run.matrix)).toEqual(generateMatrix(9));
    expect(parseBenchArgs(['--scenario', 'matrix', '--limit', '4'])!.scenario.runs).toHaveLength(4);
    expect(parseBenchArgs(['--scenario', 'matrix', '--quick'])!.scenario.runs).toHaveLength(3);
    expect(parseBenchArgs(['--scenario', 'matrix', '--only', 'w12'])!.scenario.runs).toHaveLength(1);
    // --scale reaches the generator, which sizes the arrivals for it.
    const realTime = parseBenchArgs(['--scenario', 'matrix', '--scale', '1'])!.scenario.runs;
    expect(realTime.map((run) => run.matrix)).toEqual(generateMatrix(1, { scale: 1 }));
    expect(realTime.every((run) => run.scale === 1)).toBe(true);
  });

  test('--limit and --quick belong to the matrix; --only must match a workload', () => {
    expect(() => parseBenchArgs(['--scenario', 'smoke', '--limit', '2'])).toThrow(BenchArgumentError);
    expect(() => parseBenchArgs(['--scenario', 'smoke', '--quick'])).toThrow(BenchArgumentError);
    expect(() => parseBenchArgs(['--scenario', 'matrix', '--only', 'nothing'])).toThrow(
      /matches no workload/,
    );
    expect(() => parseBenchArgs(['--scenario', 'matrix', '--limit', '0'])).toThrow(BenchArgumentError);
  });
});

describe('matrix messages', () => {
  test('a mix of kinds costs its calls; parallel drafts add one per revision', () => {
    expect(expectedCallsPerChat()).toBeCloseTo(4.45, 9);
    const mix = { long: 0, short: 0, search: 0, search_review: 1 };
    expect(expectedCallsPerChat(mix)).toBe(8);
    expect(expectedCallsPerChat(mix, true)).toBe(9);
    expect(expectedCallsPerChat({ long: 0, short: 1, search: 0, search_review: 0 }, true)).toBe(7);
    expect(expectedCallsPerChat({ long: 1, short: 0, search: 0, search_review: 0 }, true)).toBe(4);
  });

  test('the default mix never draws search_review; a search_review message searches and asks for two reviews', () => {
    for (let index = 0; index < 1000; index++)
      expect(pickKind(index / 1000, MESSAGE_MIX)).not.toBe('search_review');
    for (let index = 0; index < 50; index++) {
      const u = index / 50;
      const message = composeMessage('search_review', u);
      expect(wantsSearch(message)).toBe(true);
      expect(asksForSecondReview(message)).toBe(true);
      for (const kind of ['long', 'short', 'search'] as MessageKind[])
        expect(asksForSecondReview(composeMessage(kind, u))).toBe(false);
    }
    expect(CALLS_PER_KIND.search_review).toBe(8);
  });
});

const record = (
  user: number,
  outcome: ChatRecord['outcome'],
  sentAt: number,
  completionMs?: number,
): ChatRecord => ({
  user,
  kind: 'long',
  sentAt,
  endedAt: sentAt + (completionMs ?? 10),
  outcome,
  status: outcome === 'refused' ? 503 : 200,
  calls: outcome === 'completed' ? 4 : 0,
  callTimes: [],
  processMs: outcome === 'completed' ? 400 : 0,
  llmWaitMs: 0,
  ...(completionMs !== undefined ? { completionMs } : {}),
});

describe('false refusals against the chat deadline', () => {
  const admission = { arrivals: 3, refused: 3, admittedFailures: 0 };
  test('a refusal is false when its twin without admission completed within CHAT_TIMEOUT_MS', () => {
    const refused = [record(1, 'refused', 0), record(2, 'refused', 1), record(3, 'refused', 2)];
    const replay = [
      record(1, 'completed', 0, 29_000),
      record(2, 'completed', 1, 31_000),
      record(3, 'timed_out', 2),
    ];
    const counted = countFalseRefusals(
      refused,
      replay,
      { troupeEnv: { CHAT_TIMEOUT_MS: '30000' } },
      admission,
    );
    expect(counted.falseRefusals).toBe(1);
    expect(counted.falseRefusalRate).toBeCloseTo(1 / 3, 9);
    expect(counted.replay).toEqual({ completed: 2, completedWithinDeadline: 1, failed: 1 });
    // LLM_CHAT_TARGET_MS plays no part; without a deadline any completion counts.
    const target = { CHAT_TIMEOUT_MS: '0', LLM_CHAT_TARGET_MS: '1000' };
    expect(countFalseRefusals(refused, replay, { troupeEnv: target }, admission).falseRefusals).toBe(2);
  });

  test('in a burst, refusals the quota bound forces are not false whoever the replay happened to serve', () => {
    // 10 arrive at once; 1 call/s, 4 calls per chat, a 30 s deadline: at most ceil(30 / 4) = 8 can
    // complete in time, so 2 refusals are forced whichever users they hit.
    const arrivals = Array.from({ length: 10 }, (_, user) =>
      record(user, user < 3 ? 'refused' : 'completed', 0, 20_000),
    );
    const replay = Array.from({ length: 10 }, (_, user) =>
      record(user, user < 8 ? 'completed' : 'timed_out', 0, 25_000),
    );
    const counted = countFalseRefusals(
      arrivals,
      replay,
      { troupeEnv: { CHAT_TIMEOUT_MS: '30000' } },
      { arrivals: 10, refused: 3, admittedFailures: 0 },
      { callsPerS: 1, callsPerChat: 4 },
    );
    expect(counted).toMatchObject({ refusedWhoseTwinCompleted: 3, forcedByBound: 2, falseRefusals: 1 });
    expect(quotaForcedRefusals(arrivals, Infinity, { callsPerS: 1, callsPerChat: 4 })).toBe(0);
  });
});

describe('matrix verdicts', () => {
  const workload = generateMatrix(1).find((candidate) => candidate.arrival === 'ramp')!;
  const spec = { ...workloadRunSpec(workload), matrix: { ...workload, load: 2 } };

  test('demand along a ramp rises from 0 to the peak', () => {
    const rampMs = spec.rampS * 1000;
    expect(demandAt(spec, spec.matrix, 1000, 1000)).toBe(0);
    expect(demandAt(spec, spec.matrix, 1000, 1000 + rampMs / 2)).toBeCloseTo(1, 9);
    expect(demandAt(spec, spec.matrix, 1000, 1000 + 2 * rampMs)).toBe(2);
  });

  test('refusals at ≤ 0.9x capacity, 429s, admitted failures and false refusals decide the verdict', () => {
    const startAt = Date.parse('2026-01-01T00:00:00.000Z');
    const rampMs = spec.rampS * 1000;
    const records = [
      record(0, 'refused', startAt + rampMs * 0.2), // demand 0.4x: refused below capacity
      record(1, 'refused', startAt + rampMs * 0.9), // demand 1.8x
      record(2, 'completed', startAt + rampMs * 0.5, 1000),
    ];
    const report = {
      startedAt: new Date(startAt).toISOString(),
      provider: { rejected429: 0 },
      admission: { arrivals: 3, refused: 2, admittedFailures: 0, falseRefusals: 0, falseRefusalRate: 0 },
      chats: { refused: 2, timedOut: 0, failed: 0 },
      latencyMs: { completion: { count: 1, p95: 1000 } },
      goodput: { bound: { mu: 10, meanCallMs: 250 }, callsPerCompletedChat: 4 },
    } as unknown as BenchReport;
    const result = matrixResult({ spec, report, records, directory: '/tmp/x' });
    expect(result.refusalsBelowCapacity).toBe(1);
    expect(result.criteria).toEqual({
      no429: true,
      noAdmittedFailures: true,
      falseRefusals: true,
      noRefusalBelowCapacity: false,
      all: false,
    });
    expect(result.p95ChatUnscaledMs).toBe(1000 * spec.scale);
    expect(formatMatrixTable([result])).toMatch(/0 of 1 workloads met every criterion/);
  });
});

import type { BenchReport } from './bench-report';
import { alignColumns } from './bench-table';
import type { ChatRecord } from './chat-client';
import type { MatrixWorkload } from './matrix';
import type { RunSpec } from './scenarios';

/**
 * One matrix workload's figures and its verdict on the pass criteria, from the run's report and
 * chats (with admission on; the replay's false refusals are already in the report). Pure.
 */

/** Demand at or below this multiple of capacity must never be refused. */
export const BELOW_CAPACITY = 0.9;
/** False refusals must stay under this share of arrivals. */
export const FALSE_REFUSAL_LIMIT = 0.02;

export interface MatrixCriteria {
  /** Provider 429s: 0. */
  no429: boolean | undefined;
  /** Admitted chats that did not complete: 0. */
  noAdmittedFailures: boolean;
  /** False refusals (the replay's twin completed within the deadline): under 2 % of arrivals. */
  falseRefusals: boolean | undefined;
  /** No refusal while demand was at most 0.9x capacity. */
  noRefusalBelowCapacity: boolean;
  /** Every criterion that could be judged passed. */
  all: boolean;
}

export interface MatrixResult {
  id: string;
  label: string;
  workload: MatrixWorkload;
  arrivals: number;
  completed: number;
  refused: number;
  timedOut: number;
  failed: number;
  provider429?: number;
  admittedFailed: number;
  falseRefusals?: number;
  falseRefusalRate?: number;
  /** The two witnesses of false refusals (run-scenario.ts, countFalseRefusals). */
  refusedWhoseTwinCompleted?: number;
  forcedByBound?: number;
  /** Refused chats sent while demand (the workload's, at that moment) was ≤ 0.9x capacity. */
  refusalsBelowCapacity: number;
  /** p95 of completed chats' time, as run and unscaled (× scale), ms. */
  p95ChatMs?: number;
  p95ChatUnscaledMs?: number;
  /** Calls of completed chats per second, from the first arrival to the last chat's end (as run). */
  goodputCallsPerS: number;
  /** min(R/60, C/L) as run, L the measured mean call time (nominal when nothing completed). */
  boundCallsPerS: number;
  goodputRatio: number;
  meanCallMs?: number;
  /** Calls that completed chats made (agent turns and tool rounds), per completed chat. */
  callsPerCompletedChat: number;
  /** Calls the provider accepted (withdrawn parallel drafts and failed chats' calls too). */
  providerCalls?: number;
  criteria: MatrixCriteria;
  /** Where the run's report.json, chart and chats are. */
  directory: string;
}

/** Demand ÷ capacity when a chat was sent: constant for bursts and Poisson arrivals, rising along a ramp. */
export function demandAt(spec: RunSpec, workload: MatrixWorkload, startAt: number, sentAt: number): number {
  if (workload.arrival !== 'ramp') return workload.load;
  const rampMs = spec.rampS * 1000;
  if (!(rampMs > 0)) return workload.load;
  return workload.load * Math.min(1, Math.max(0, (sentAt - startAt) / rampMs));
}

export function matrixResult(input: {
  spec: RunSpec;
  report: BenchReport;
  records: ChatRecord[];
  directory: string;
}): MatrixResult {
  const { spec, report, records } = input;
  const workload = spec.matrix!;
  const startAt = Date.parse(report.startedAt);
  const refusalsBelowCapacity = records.filter(
    (record) =>
      record.outcome === 'refused' && demandAt(spec, workload, startAt, record.sentAt) <= BELOW_CAPACITY,
  ).length;
  const completed = records.filter((record) => record.outcome === 'completed');
  const usefulCalls = completed.reduce((sum, record) => sum + record.calls, 0);
  const lastEnd = completed.reduce((latest, record) => Math.max(latest, record.endedAt), 0);
  const spanS = Math.max(1, lastEnd - startAt) / 1000;
  const goodputCallsPerS = completed.length > 0 ? usefulCalls / spanS : 0;
  const bound = report.goodput.bound.mu;
  const provider429 = report.provider?.rejected429;
  const falseRefusalRate = report.admission.falseRefusalRate;
  const p95 = report.latencyMs.completion.p95;
  const criteria: MatrixCriteria = {
    no429: provider429 === undefined ? undefined : provider429 === 0,
    noAdmittedFailures: report.admission.admittedFailures === 0,
    falseRefusals: falseRefusalRate === undefined ? undefined : falseRefusalRate < FALSE_REFUSAL_LIMIT,
    noRefusalBelowCapacity: refusalsBelowCapacity === 0,
    all: false,
  };
  criteria.all =
    criteria.no429 !== false &&
    criteria.noAdmittedFailures &&
    criteria.falseRefusals !== false &&
    criteria.noRefusalBelowCapacity;
  return {
    id: workload.id,
    label: spec.variant,
    workload,
    arrivals: records.length,
    completed: completed.length,
    refused: report.chats.refused,
    timedOut: report.chats.timedOut,
    failed: report.chats.failed,
    ...(provider429 !== undefined ? { provider429 } : {}),
    admittedFailed: report.admission.admittedFailures,
    ...(report.admission.falseRefusals !== undefined
      ? {
          falseRefusals: report.admission.falseRefusals,
          falseRefusalRate,
          refusedWhoseTwinCompleted: report.admission.refusedWhoseTwinCompleted,
          forcedByBound: report.admission.forcedByBound,
        }
      : {}),
    refusalsBelowCapacity,
    ...(p95 !== undefined ? { p95ChatMs: p95, p95ChatUnscaledMs: p95 * spec.scale } : {}),
    goodputCallsPerS,
    boundCallsPerS: bound,
    goodputRatio: bound > 0 ? goodputCallsPerS / bound : 0,
    ...(report.goodput.bound.meanCallMs !== undefined ? { meanCallMs: report.goodput.bound.meanCallMs } : {}),
    callsPerCompletedChat: report.goodput.callsPerCompletedChat,
    ...(report.provider ? { providerCalls: report.provider.accepted } : {}),
    criteria,
    directory: input.directory,
  };
}

const mark = (pass: boolean | undefined) => (pass === undefined ? ' ?' : pass ? ' ok' : ' FAIL');
const seconds = (ms: number | undefined) => (ms === undefined ? '–' : `${(ms / 1000).toFixed(1)} s`);

/** One workload's figures with each criterion beside its value. */
export function formatMatrixResult(result: MatrixResult): string {
  const falseRefusals =
    result.falseRefusals === undefined
      ? 'not replayed'
      : `${result.falseRefusals} (${((result.falseRefusalRate ?? 0) * 100).toFixed(1)} %)` +
        ` [twin completed ${result.refusedWhoseTwinCompleted ?? '–'}, forced by the bound ${result.forcedByBound ?? '–'}]`;
  return [
    `${result.id}: ${result.arrivals} arrivals, ${result.completed} completed, ${result.refused} refused, ` +
      `${result.timedOut} timed out, ${result.failed} failed; ${result.callsPerCompletedChat.toFixed(2)} calls per completed chat` +
      (result.providerCalls !== undefined
        ? ` (${result.providerCalls} calls accepted by the provider in all)`
        : '') +
      (result.meanCallMs !== undefined
        ? `, calls took ${(result.meanCallMs / 1000).toFixed(2)} s as run`
        : ''),
    alignColumns([
      ['  criterion', 'target', 'value', ''],
      ['  provider 429s', '0', String(result.provider429 ?? '–'), mark(result.criteria.no429)],
      [
        '  admitted chats failed',
        '0',
        String(result.admittedFailed),
        mark(result.criteria.noAdmittedFailures),
      ],
      ['  false refusals', '< 2 % of arrivals', falseRefusals, mark(result.criteria.falseRefusals)],
      [
        `  refusals at ≤ ${BELOW_CAPACITY}x capacity`,
        '0',
        String(result.refusalsBelowCapacity),
        mark(result.criteria.noRefusalBelowCapacity),
      ],
      ['  p95 chat time (unscaled)', '', seconds(result.p95ChatUnscaledMs), ''],
      [
        '  goodput / bound',
        '',
        `${(result.goodputRatio * 100).toFixed(1)} % (${result.goodputCallsPerS.toFixed(2)} / ${result.boundCallsPerS.toFixed(2)} calls/s)`,
        '',
      ],
    ]),
  ].join('\n');
}

/** Every workload on one line each, the four criteria side by side, and the count that passed. */
export function formatMatrixTable(results: MatrixResult[]): string {
  const rows = [
    [
      'workload',
      'load',
      'arrivals',
      '429s',
      'adm. failed',
      'false ref.',
      'ref. ≤0.9x',
      'p95 chat',
      'goodput/bound',
      'pass',
    ],
    ['(target)', '', '', '0', '0', '< 2 %', '0', '', '', ''],
    ...results.map((result) => [
      result.label,
      `${result.workload.load.toFixed(2)}x`,
      String(result.arrivals),
      String(result.provider429 ?? '–'),
      String(result.admittedFailed),
      result.falseRefusalRate === undefined ? '–' : `${(result.falseRefusalRate * 100).toFixed(1)} %`,
      String(result.refusalsBelowCapacity),
      seconds(result.p95ChatUnscaledMs),
      `${(result.goodputRatio * 100).toFixed(0)} %`,
      result.criteria.all ? 'yes' : 'no',
    ]),
  ];
  const passed = results.filter((result) => result.criteria.all).length;
  return `${alignColumns(rows)}\n${passed} of ${results.length} workloads met every criterion`;
}

import type { BenchReport, ReportInput, Target } from './bench-report';
import { chatCapacityPerSecond, quotaBound, unservableShare } from './statistics';

/** Issue 6's targets, judged on a built report, and the notes that say how to read it. Pure. */

const percent = (value: number) => `${(value * 100).toFixed(1)} %`;

/** The false-refusal target, once a replay without admission has counted them. */
export function falseRefusalTarget(report: BenchReport): Target | undefined {
  const rate = report.admission.falseRefusalRate;
  if (rate === undefined) return undefined;
  return { name: 'false refusals', target: '< 2 % of arrivals', value: percent(rate), pass: rate < 0.02 };
}

/**
 * Under the brief's order (the default) a host turn waits no longer than a reporter turn at p95
 * (issue 10: the order must hold across instances too). Only meaningful when calls queued at all.
 */
function priorityTarget(report: BenchReport): Target | undefined {
  const order = report.settings.troupeEnv.LLM_PRIORITY_ORDER ?? 'host,planner,critic,reporter';
  const host = report.latencyMs.llmWaitByAgent?.host;
  const reporter = report.latencyMs.llmWaitByAgent?.reporter;
  if (order !== 'host,planner,critic,reporter' || host?.p95 === undefined || reporter?.p95 === undefined)
    return undefined;
  const value = `host ${(host.p95 / 1000).toFixed(2)} s, reporter ${(reporter.p95 / 1000).toFixed(2)} s`;
  if (reporter.p95 < 100)
    return {
      name: 'priority (p95 wait)',
      target: 'host ≤ reporter',
      value,
      note: 'calls hardly queued: not a target',
    };
  return { name: 'priority (p95 wait)', target: 'host ≤ reporter', value, pass: host.p95 <= reporter.p95 };
}

export function evaluateTargets(report: BenchReport, input: ReportInput): Target[] {
  const targets: Target[] = [];
  const scale = report.settings.scale;
  if (report.provider) {
    targets.push({
      name: 'provider 429s',
      target: '0',
      value: String(report.provider.rejected429),
      pass: report.provider.rejected429 === 0,
    });
  }
  // Admission's own targets (issue 9): nothing it let in fails; it refuses nothing that would have
  // finished (counted against a replay with admission off, when the run has one).
  if (report.settings.arrival !== 'hold') {
    targets.push({
      name: 'admitted failures',
      target: '0',
      value: String(report.admission.admittedFailures),
      pass: report.admission.admittedFailures === 0,
    });
  }
  const falseRefusals = falseRefusalTarget(report);
  if (falseRefusals) targets.push(falseRefusals);
  // A burst's arrivals last a moment: its goodput over that moment says nothing about the bound.
  if (report.settings.arrival !== 'hold' && report.settings.arrival !== 'burst') {
    const { goodput } = report;
    targets.push({
      name: 'goodput / bound',
      target: '≥ 97 % when demand exceeds the bound',
      value: percent(goodput.ratio),
      ...(goodput.demandExceedsBound
        ? { pass: goodput.ratio >= 0.97 }
        : {
            note: `demand ${goodput.demandCallsPerS.toFixed(2)} calls/s is below the bound ${goodput.bound.mu.toFixed(2)}: not a target`,
          }),
    });
  }
  if (report.waste) {
    const held = report.settings.arrival === 'hold';
    targets.push({
      name: 'quota waste',
      target: '< 1 %',
      value: percent(report.waste.ratio),
      // Held streams are released by the benchmark itself, which cancels the chats they carried.
      ...(held
        ? { note: 'streams are released on purpose: not a target here' }
        : { pass: report.waste.ratio < 0.01 }),
    });
  }
  if (input.scenario === 'overload') {
    const refusal = report.latencyMs.refusal;
    targets.push({
      name: 'admitted chats timed out',
      target: '0',
      value: String(report.chats.admittedTimedOut),
      pass: report.chats.admittedTimedOut === 0,
    });
    targets.push({
      name: 'refusal latency (max)',
      target: '< 100 ms',
      value:
        refusal.max === undefined
          ? 'no refusals'
          : `${refusal.max.toFixed(1)} ms (p99 ${refusal.p99!.toFixed(1)} ms)`,
      ...(refusal.max === undefined ? {} : { pass: refusal.max < 100 }),
    });
    targets.push({
      name: 'refusals with Retry-After',
      target: '100 %',
      value:
        report.refusals.total === 0
          ? 'no refusals'
          : percent(report.refusals.withRetryAfter / report.refusals.total),
      ...(report.refusals.total === 0
        ? {}
        : { pass: report.refusals.withRetryAfter === report.refusals.total }),
    });
  }
  const priority = priorityTarget(report);
  if (priority) targets.push(priority);
  const briefTargets: Record<string, { seconds: number; errorRate: number }> = {
    phase1: { seconds: 40, errorRate: 0.02 },
    phase2: { seconds: 30, errorRate: 0.01 },
  };
  // The cluster scenario's second variant is the brief's phase 2 over three instances.
  const brief =
    briefTargets[input.scenario] ??
    (input.scenario === 'cluster' && report.variant.startsWith('phase 2') ? briefTargets.phase2 : undefined);
  if (brief) {
    const p95 = report.latencyMs.completion.p95;
    const errors = report.chats.attempted - report.chats.completed - report.chats.released;
    const errorRate = report.chats.attempted > 0 ? errors / report.chats.attempted : 0;
    // The same after the warm-up: a population's first minute is a transient worth telling apart.
    const settled = input.records.filter((record) => record.sentAt >= input.warmupEndAt);
    const settledErrors = settled.filter(
      (record) => record.outcome !== 'completed' && record.outcome !== 'released',
    ).length;
    const settledRate = settled.length > 0 ? settledErrors / settled.length : 0;
    const capacity = chatCapacityPerSecond(
      quotaBound(report.settings.unscaledQuota, (report.goodput.bound.meanCallMs ?? 0) * scale || undefined),
      report.goodput.callsPerCompletedChat,
    );
    const floor = unservableShare(
      report.settings.users,
      (report.settings.thinkMs * scale) / 1000,
      brief.seconds,
      capacity,
    );
    targets.push({
      name: `p95 completion (unscaled)`,
      target: `≤ ${brief.seconds} s`,
      value: p95 === undefined ? 'no completions' : `${((p95 * scale) / 1000).toFixed(1)} s`,
      ...(p95 === undefined ? {} : { pass: (p95 * scale) / 1000 <= brief.seconds }),
    });
    targets.push({
      name: 'error rate (refused + failed + timed out)',
      target: `< ${brief.errorRate * 100} %`,
      value: `${percent(errorRate)} (${percent(settledRate)} after warm-up)`,
      pass: errorRate < brief.errorRate,
      ...(floor > 0
        ? {
            note: `the quota makes it impossible: serving all ${report.settings.users} users within ${brief.seconds} s needs ${(report.settings.users / ((report.settings.thinkMs * scale) / 1000 + brief.seconds)).toFixed(2)} chats/s, the quota completes ${capacity.toFixed(2)}, so at least ${percent(floor)} must be refused or be slower`,
          }
        : {}),
    });
  }
  if (input.scenario === 'users-5000' || input.scenario === 'sse-capacity') {
    const crashed = input.serverExitCode !== undefined && input.serverExitCode !== null;
    targets.push({
      name: 'one process survives',
      target: 'no crash',
      value: crashed ? `exited with ${input.serverExitCode}` : 'ran to the end',
      pass: !crashed,
    });
  }
  return targets;
}

export function explain(report: BenchReport, input: ReportInput): string[] {
  const notes: string[] = [];
  const scale = report.settings.scale;
  if (scale !== 1) {
    notes.push(
      `Scale ${scale}: provider latency ÷${scale}, its speed and RPM ×${scale}, think time, timeouts, LLM_TIMEOUT and LLM_CHAT_TARGET_MS ÷${scale}; ` +
        `latencies are as measured — multiply by ${scale} for the unscaled equivalent. Troupe's own fixed windows (60 s RPM window, 10 s spreading window, 3 s queue refresh) are not scaled.`,
    );
  }
  if (!report.goodput.demandExceedsBound && report.settings.arrival !== 'hold') {
    notes.push(
      'Demand stayed below the quota bound, so goodput measures the demand, not the scheduler: goodput/bound is not a target here.',
    );
  }
  if (report.provider === undefined)
    notes.push('No sim-llm counters (--url without --sim-url): 429s and waste are unknown.');
  if (input.serverExitCode !== undefined && input.serverExitCode !== null)
    notes.push(`Troupe exited during the run (code ${input.serverExitCode}).`);
  return notes;
}

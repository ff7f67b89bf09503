import type { ChatRecord } from './chat-client';
import { expectedCallsPerChat } from './chat-messages';
import type { ServerDiagnostics, SimStats, Sample } from './resource-sampler';
import type { ScaledRun } from './scenarios';
import {
  histogram,
  quotaBound,
  summarize,
  type Histogram,
  type QuotaBound,
  type Summary,
} from './statistics';
import { evaluateTargets, explain } from './report-targets';
import {
  buildTimeline,
  eventLoopFigures,
  providerRate,
  streamFigures,
  whileWaitingRate,
} from './report-series';

/**
 * Turns one run's raw material (chat records, once-a-second samples, the sim's counters) into the
 * report: the figures issue 6 asks for and the verdict on each target. Pure: the same input gives
 * the same report, which is what the test checks.
 */

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  os: string;
  openFilesLimit?: number;
}

export interface ReportInput {
  scenario: string;
  summary: string;
  command: string;
  machine: MachineInfo;
  run: ScaledRun;
  /** Troupe's URL, and whether the bench started it (and sim-llm) itself. */
  targetUrl: string;
  managed: boolean;
  runtime?: string;
  startAt: number;
  warmupEndAt: number;
  arrivalsEndAt: number;
  endedAt: number;
  records: ChatRecord[];
  samples: Sample[];
  /** Sample taken before any load (baseline memory). */
  baseline?: Sample;
  /** The sim's counters after the drain (reset just before the run); undefined without a sim. */
  sim?: SimStats;
  /** Troupe exited during the run with this code (a crash). */
  serverExitCode?: number | null;
  /** Troupe's event-loop delay and GC pauses, one line a second (when the bench started it). */
  diagnostics?: ServerDiagnostics[];
}

export interface Target {
  name: string;
  target: string;
  value: string;
  /** undefined = not applicable in this run (the note says why). */
  pass?: boolean;
  note?: string;
}

export interface TimelinePoint {
  /** Seconds since the start of arrivals (bucket start). */
  t: number;
  /** Calls of chats that completed, per second. */
  goodput: number;
  /** Calls the provider accepted, per second (sim counters). */
  providerCalls?: number;
  completedChats: number;
  refusedChats: number;
  rssMb?: number;
  cpuPercent?: number;
  openStreams?: number;
}

export interface BenchReport {
  scenario: string;
  variant: string;
  summary: string;
  command: string;
  machine: MachineInfo;
  startedAt: string;
  settings: {
    scale: number;
    arrival: string;
    users: number;
    arrivalRatePerS?: number;
    thinkMs: number;
    durationS: number;
    warmupS: number;
    clientTimeoutMs: number;
    quota: ScaledRun['quota'];
    unscaledQuota: ScaledRun['spec']['quota'];
    troupeEnv: Record<string, string>;
    targetUrl: string;
    managed: boolean;
    runtime?: string;
  };
  chats: {
    attempted: number;
    completed: number;
    refused: number;
    failed: number;
    timedOut: number;
    released: number;
    /** Got a 200 stream (were not refused before it). */
    admitted: number;
    admittedTimedOut: number;
    codes: Record<string, number>;
  };
  /**
   * What admission did (issue 9): chats it let in that then failed (its targets: 0), and — when the
   * run was replayed with admission off — the chats it refused that would have completed within the
   * chat deadline, CHAT_TIMEOUT_MS (its target: under 2 % of arrivals).
   */
  admission: {
    arrivals: number;
    refused: number;
    admittedFailures: number;
    falseRefusals?: number;
    falseRefusalRate?: number;
    /** Refused chats whose twin in the replay completed within the deadline. */
    refusedWhoseTwinCompleted?: number;
    /** Arrivals beyond what the quota bound lets any scheduler complete in time. */
    forcedByBound?: number;
    replay?: { completed: number; completedWithinDeadline: number; failed: number };
  };
  provider?: SimStats;
  goodput: {
    windowS: number;
    /** Calls of completed chats finished inside the window, per second. */
    callsPerS: number;
    /** Calls the provider accepted inside the window, per second. */
    providerCallsPerS?: number;
    bound: QuotaBound;
    ratio: number;
    /** Calls/s the arrivals in the window asked for (attempts × calls per completed chat). */
    demandCallsPerS: number;
    demandExceedsBound: boolean;
    callsPerCompletedChat: number;
    /** The provider's completions while calls waited for a slot (report-series.ts), against the bound. */
    whileWaiting?: { seconds: number; callsPerS: number; ratio: number };
  };
  waste?: { calls: number; ratio: number; usefulCalls: number };
  latencyMs: {
    firstEvent: Summary;
    firstToken: Summary;
    completion: Summary;
    refusal: Summary;
    /** Time a completed chat's calls spent queued in Troupe's LLM scheduler, summed per chat (agent_end waitMs). */
    llmQueueWait: Summary;
    /** Each agent turn's queue wait, by agent, over completed chats: the priority order at work. */
    llmWaitByAgent: Record<string, Summary>;
  };
  refusals: { total: number; withRetryAfter: number; retryAfterMs: Summary };
  queuedWait: {
    count: number;
    estimatedMs: Summary;
    actualMs: Summary;
    absoluteErrorMs: Summary;
    medianRatio?: number;
  };
  server: {
    baselineRssMb?: number;
    peakRssMb?: number;
    meanCpuPercent?: number;
    peakCpuPercent?: number;
    /** Troupe's CPU time from the baseline to the end of the run per completed chat, and per provider call the sim accepted (issue 14). */
    cpuMsPerChat?: number;
    cpuMsPerCall?: number;
    exitCode?: number | null;
    /** From the server's own diagnostics, over the arrival phase and the drain. */
    eventLoop?: {
      maxDelayMs: number;
      /** The worst of the per-second p99 delays. */
      worstP99Ms: number;
      gcPausesOver50Ms: number;
      longestGcMs: number;
      /** Seconds (since the first arrival) whose event loop stalled 100 ms or more, with the GC time in them. */
      stalls: Array<{ t: number; delayMs: number; gcMs: number }>;
    };
  };
  loadGenerator: { meanCpuPercent?: number; peakCpuPercent?: number; simMeanCpuPercent?: number };
  streams?: {
    peakOpen: number;
    peakWaiting: number;
    rssAtPeakMb?: number;
    rssPerStreamKb?: number;
    queuedReceived: number;
    /** `queued` events received by all streams together, and per second of the run. */
    queuedEvents: number;
    queuedEventsPerS: number;
    /** Troupe's V8 heap in use at the peak (from its diagnostics), and per stream over the resting heap. */
    heapAtPeakMb?: number;
    heapPerStreamKb?: number;
    /** A few seconds after every stream was released: memory, and runs still waiting (should be 0). */
    rssAfterReleaseMb?: number;
    waitingAfterRelease?: number;
  };
  /** Distribution of completion latency (first-event latency for held streams, which do not complete). */
  histogram: Histogram;
  histogramOf: 'completion' | 'first event';
  timeline: TimelinePoint[];
  targets: Target[];
  notes: string[];
}

const mb = (kb: number | undefined) => (kb === undefined ? undefined : kb / 1024);

/** CPU ms per completed chat and per accepted provider call, from the baseline reading to the last sample. */
function cpuPerWork(
  input: ReportInput,
  completedChats: number,
): { cpuMsPerChat?: number; cpuMsPerCall?: number } {
  const start = input.baseline?.troupe?.cpuSeconds;
  const last = [...input.samples].reverse().find((sample) => sample.troupe?.cpuSeconds !== undefined);
  const end = last?.troupe?.cpuSeconds;
  if (start === undefined || end === undefined || end < start) return {};
  const cpuMs = (end - start) * 1000;
  return {
    ...(completedChats > 0 ? { cpuMsPerChat: cpuMs / completedChats } : {}),
    ...(input.sim && input.sim.accepted > 0 ? { cpuMsPerCall: cpuMs / input.sim.accepted } : {}),
  };
}

export function buildReport(input: ReportInput): BenchReport {
  const { run, records } = input;
  const spec = run.spec;
  const count = (outcome: ChatRecord['outcome']) =>
    records.filter((record) => record.outcome === outcome).length;
  const completed = records.filter((record) => record.outcome === 'completed');
  const refused = records.filter((record) => record.outcome === 'refused');
  // Admitted: the stream started and the chat was not refused while it waited in the line (a
  // refusal before it started spent no quota, as a 503 does not).
  const admitted = records.filter((record) => record.status === 200 && record.outcome !== 'refused');
  const codes: Record<string, number> = {};
  for (const record of records)
    if (record.outcome !== 'completed' && record.code) codes[record.code] = (codes[record.code] ?? 0) + 1;

  const usefulCalls = completed.reduce((sum, record) => sum + record.calls, 0);
  const processMs = completed.reduce((sum, record) => sum + record.processMs, 0);
  const meanCallMs = usefulCalls > 0 ? processMs / usefulCalls : undefined;
  const bound = quotaBound(run.quota, meanCallMs);
  const callsPerCompletedChat =
    completed.length > 0 ? usefulCalls / completed.length : expectedCallsPerChat();

  const windowStart = input.warmupEndAt;
  const windowEnd = Math.max(windowStart + 1, input.arrivalsEndAt);
  const windowS = (windowEnd - windowStart) / 1000;
  const inWindow = (time: number) => time >= windowStart && time < windowEnd;
  const goodCalls = completed.reduce((sum, record) => sum + record.callTimes.filter(inWindow).length, 0);
  const attemptsInWindow = records.filter((record) => inWindow(record.sentAt)).length;
  const demandCallsPerS = (attemptsInWindow * callsPerCompletedChat) / windowS;
  const providerCallsPerS = providerRate(input.samples, windowStart, windowEnd);
  const whileWaiting = whileWaitingRate(input.samples);
  const goodput = {
    windowS,
    callsPerS: goodCalls / windowS,
    ...(providerCallsPerS !== undefined ? { providerCallsPerS } : {}),
    bound,
    ratio: goodCalls / windowS / bound.mu,
    demandCallsPerS,
    demandExceedsBound: demandCallsPerS >= bound.mu,
    callsPerCompletedChat,
    ...(whileWaiting ? { whileWaiting: { ...whileWaiting, ratio: whileWaiting.callsPerS / bound.mu } } : {}),
  };
  const waste =
    input.sim && input.sim.accepted > 0
      ? {
          calls: Math.max(0, input.sim.accepted - usefulCalls),
          ratio: Math.max(0, input.sim.accepted - usefulCalls) / input.sim.accepted,
          usefulCalls,
        }
      : input.sim
        ? { calls: 0, ratio: 0, usefulCalls }
        : undefined;

  const queued = records.filter(
    (record) => record.queuedEstimateMs !== undefined && record.slotWaitMs !== undefined,
  );
  const ratios = queued
    .filter((record) => record.queuedEstimateMs! > 0)
    .map((record) => record.slotWaitMs! / record.queuedEstimateMs!);
  const arrivalSamples = input.samples.filter(
    (sample) => sample.at >= input.startAt && sample.at <= input.arrivalsEndAt,
  );
  const troupeCpu = arrivalSamples
    .map((sample) => sample.troupe?.cpuPercent)
    .filter((value): value is number => value !== undefined);
  const loadCpu = arrivalSamples
    .map((sample) => sample.loadCpuPercent)
    .filter((value): value is number => value !== undefined);
  const simCpu = arrivalSamples
    .map((sample) => sample.sim?.cpuPercent)
    .filter((value): value is number => value !== undefined);
  const peakRssKb = input.samples.reduce<number | undefined>(
    (peak, sample) =>
      sample.troupe ? Math.max(peak ?? 0, sample.troupe.peakRssKb, sample.troupe.rssKb) : peak,
    undefined,
  );

  const report: BenchReport = {
    scenario: input.scenario,
    variant: spec.variant,
    summary: input.summary,
    command: input.command,
    machine: input.machine,
    startedAt: new Date(input.startAt).toISOString(),
    settings: {
      scale: spec.scale,
      arrival: spec.arrival,
      users: spec.users,
      ...(spec.arrival === 'open' ? { arrivalRatePerS: run.arrivalRatePerS } : {}),
      thinkMs: run.thinkMs,
      durationS: spec.durationS,
      warmupS: spec.warmupS,
      clientTimeoutMs: run.clientTimeoutMs,
      quota: run.quota,
      unscaledQuota: spec.quota,
      troupeEnv: run.troupeEnv,
      targetUrl: input.targetUrl,
      managed: input.managed,
      ...(input.runtime ? { runtime: input.runtime } : {}),
    },
    chats: {
      attempted: records.length,
      completed: completed.length,
      refused: refused.length,
      failed: count('failed'),
      timedOut: count('timed_out'),
      released: count('released'),
      admitted: admitted.length,
      admittedTimedOut: admitted.filter((record) => record.outcome === 'timed_out').length,
      codes,
    },
    admission: {
      arrivals: records.length,
      refused: refused.length,
      // Released streams (hold scenarios) were ended by the benchmark, not failed by Troupe.
      admittedFailures: admitted.filter(
        (record) => record.outcome !== 'completed' && record.outcome !== 'released',
      ).length,
    },
    ...(input.sim ? { provider: input.sim } : {}),
    goodput,
    ...(waste ? { waste } : {}),
    latencyMs: {
      firstEvent: summarize(admitted.map((record) => record.firstEventMs ?? NaN)),
      firstToken: summarize(completed.map((record) => record.firstTokenMs ?? NaN)),
      completion: summarize(completed.map((record) => record.completionMs ?? NaN)),
      refusal: summarize(refused.map((record) => record.headersMs ?? NaN)),
      llmQueueWait: summarize(completed.map((record) => record.llmWaitMs)),
      llmWaitByAgent: waitsByAgent(completed),
    },
    refusals: {
      total: refused.length,
      withRetryAfter: refused.filter((record) => record.retryAfterMs !== undefined).length,
      retryAfterMs: summarize(refused.map((record) => record.retryAfterMs ?? NaN)),
    },
    queuedWait: {
      count: queued.length,
      estimatedMs: summarize(queued.map((record) => record.queuedEstimateMs!)),
      actualMs: summarize(queued.map((record) => record.slotWaitMs!)),
      absoluteErrorMs: summarize(
        queued.map((record) => Math.abs(record.slotWaitMs! - record.queuedEstimateMs!)),
      ),
      ...(ratios.length > 0 ? { medianRatio: summarize(ratios).p50 } : {}),
    },
    server: {
      baselineRssMb: mb(input.baseline?.troupe?.rssKb),
      peakRssMb: mb(peakRssKb),
      meanCpuPercent: summarize(troupeCpu).mean,
      peakCpuPercent: summarize(troupeCpu).max,
      ...cpuPerWork(input, completed.length),
      ...(input.serverExitCode !== undefined ? { exitCode: input.serverExitCode } : {}),
      ...(input.diagnostics && input.diagnostics.length > 0
        ? { eventLoop: eventLoopFigures(input.diagnostics, input.startAt) }
        : {}),
    },
    loadGenerator: {
      meanCpuPercent: summarize(loadCpu).mean,
      peakCpuPercent: summarize(loadCpu).max,
      simMeanCpuPercent: summarize(simCpu).mean,
    },
    ...(spec.arrival === 'hold' ? { streams: streamFigures(input) } : {}),
    histogram:
      spec.arrival === 'hold'
        ? histogram(admitted.map((record) => record.firstEventMs ?? 0))
        : histogram(completed.map((record) => record.completionMs!)),
    histogramOf: spec.arrival === 'hold' ? 'first event' : 'completion',
    timeline: buildTimeline(input),
    targets: [],
    notes: [],
  };
  report.targets = evaluateTargets(report, input);
  report.notes = explain(report, input);
  return report;
}

/** Every agent turn's LLM queue wait, pooled by agent (the brief's four first, in their order). */
function waitsByAgent(records: ChatRecord[]): Record<string, Summary> {
  const pooled = new Map<string, number[]>();
  for (const record of records)
    for (const [agent, waits] of Object.entries(record.agentWaitMs ?? {}))
      pooled.set(agent, [...(pooled.get(agent) ?? []), ...waits]);
  const order = ['host', 'planner', 'critic', 'reporter'];
  const agents = [...pooled.keys()].sort(
    (a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99) || a.localeCompare(b),
  );
  return Object.fromEntries(agents.map((agent) => [agent, summarize(pooled.get(agent)!)]));
}

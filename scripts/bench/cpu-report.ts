import { alignColumns } from './bench-table';

/**
 * The `cpu` scenario's figures (issue 14): what one provider call costs each server in CPU time,
 * Troupe against a bare gateway (Portkey) relaying the same calls to the same sim-llm. Pure: the
 * same measurements give the same report and table.
 */

/** What a closed-loop phase measured over its window (after its warm-up). */
export interface CpuMeasurement {
  /** Short name of what was driven: "Troupe one-call (JSON)", "Portkey streamed"… */
  label: string;
  /** The measured server's own CPU time (utime + stime) over the window, seconds. */
  cpuSeconds: number;
  /** Provider calls sim-llm completed in the window (the calls the server relayed). */
  calls: number;
  /** Client requests (chats, or relayed calls) that completed in the window. */
  completed: number;
  /** Client requests that failed in the window (any non-success answer). */
  failed: number;
  windowS: number;
  /** Clients of the closed loop. */
  clients: number;
  /** Mean time of a completed request, ms. */
  meanLatencyMs: number;
}

export interface CpuFigures extends CpuMeasurement {
  cpuMsPerCall: number;
  cpuMsPerRequest: number;
  callsPerRequest: number;
  requestsPerS: number;
  /** Requests per second of CPU time: what one fully busy core would serve. */
  requestsPerCoreS: number;
}

export function cpuFigures(measurement: CpuMeasurement): CpuFigures {
  const cpuMs = measurement.cpuSeconds * 1000;
  return {
    ...measurement,
    cpuMsPerCall: measurement.calls > 0 ? cpuMs / measurement.calls : NaN,
    cpuMsPerRequest: measurement.completed > 0 ? cpuMs / measurement.completed : NaN,
    callsPerRequest: measurement.completed > 0 ? measurement.calls / measurement.completed : NaN,
    requestsPerS: measurement.windowS > 0 ? measurement.completed / measurement.windowS : NaN,
    requestsPerCoreS: measurement.cpuSeconds > 0 ? measurement.completed / measurement.cpuSeconds : NaN,
  };
}

/** Issue 14's goals: a one-call chat ≤ 1.0× Portkey's CPU per call, a multi-agent chat ≤ 1.25× per call. */
export const ONE_CALL_GOAL = 1.0;
export const MULTI_AGENT_GOAL = 1.25;

export interface CpuGoal {
  name: string;
  ratio: number;
  goal: number;
  pass: boolean;
  /** Which Portkey figure it is measured against. */
  against: string;
}

export interface CpuReport {
  scenario: 'cpu';
  startedAt: string;
  command: string;
  commit?: string;
  machine: string;
  settings: {
    clients: number;
    warmupS: number;
    windowS: number;
    /** The window of each server, split into this many rounds taken in turn with the others. */
    rounds: number;
    /** Load before each round's reading: a server back from its pause settles first. */
    rampS?: number;
    sim: { latencyMs: number; tps: number; rpm: number; concurrency: number };
    runtime: string;
  };
  troupeOneCall: CpuFigures;
  troupeMultiAgent: CpuFigures;
  /** Portkey relaying the one-call chat's request, non-streamed like Troupe's call for a JSON chat. */
  portkeyJson: CpuFigures;
  /** Portkey relaying the same request streamed (SSE passed through chunk by chunk). */
  portkeyStreamed: CpuFigures;
  goals: CpuGoal[];
}

/**
 * The goals, each against the Portkey figure of the same kind of call: the one-call JSON chat makes
 * one non-streamed call when nobody listens to deltas, so it is compared with Portkey relaying a
 * non-streamed call; multi-agent chats stream every call to the user, so with Portkey streaming.
 * The stricter of the two Portkey figures is also reported, so no comparison flatters Troupe unseen.
 */
export function cpuGoals(
  report: Pick<CpuReport, 'troupeOneCall' | 'troupeMultiAgent' | 'portkeyJson' | 'portkeyStreamed'>,
): CpuGoal[] {
  const goal = (
    name: string,
    troupe: CpuFigures,
    portkey: CpuFigures,
    limit: number,
    against: string,
  ): CpuGoal => {
    const ratio = troupe.cpuMsPerCall / portkey.cpuMsPerCall;
    return { name, ratio, goal: limit, pass: Number.isFinite(ratio) && ratio <= limit, against };
  };
  const cheapest =
    report.portkeyJson.cpuMsPerCall <= report.portkeyStreamed.cpuMsPerCall
      ? report.portkeyJson
      : report.portkeyStreamed;
  return [
    goal('one-call chat', report.troupeOneCall, report.portkeyJson, ONE_CALL_GOAL, 'Portkey non-streamed'),
    goal(
      'multi-agent chat',
      report.troupeMultiAgent,
      report.portkeyStreamed,
      MULTI_AGENT_GOAL,
      'Portkey streamed',
    ),
    goal('one-call chat', report.troupeOneCall, cheapest, ONE_CALL_GOAL, `Portkey's cheaper figure`),
    goal('multi-agent chat', report.troupeMultiAgent, cheapest, MULTI_AGENT_GOAL, `Portkey's cheaper figure`),
  ];
}

const fixed = (value: number, digits: number) => (Number.isFinite(value) ? value.toFixed(digits) : '–');

export function formatCpuReport(report: CpuReport): string {
  const { settings } = report;
  const lines: string[] = [];
  lines.push(
    `cpu — CPU per provider call   (closed loop, ${settings.clients} clients; per server ${settings.warmupS} s warm-up + ${settings.windowS} s measured in ${settings.rounds} interleaved rounds${settings.rampS !== undefined ? `, each read after ${settings.rampS} s of load` : ''}; Troupe from ${settings.runtime})`,
  );
  lines.push(
    `sim-llm: ${settings.sim.latencyMs} ms + ${settings.sim.tps} tok/s, ${settings.sim.rpm} rpm, ${settings.sim.concurrency} concurrent (no quota pressure)` +
      (report.commit ? `; commit ${report.commit}` : ''),
  );
  lines.push('');
  const all = [report.troupeOneCall, report.troupeMultiAgent, report.portkeyJson, report.portkeyStreamed];
  lines.push(
    alignColumns([
      [
        '',
        'CPU ms/call',
        'CPU ms/request',
        'calls/request',
        'requests/s',
        'requests/s per core',
        'calls',
        'failed',
        'mean latency',
      ],
      ...all.map((figures) => [
        figures.label,
        fixed(figures.cpuMsPerCall, 2),
        fixed(figures.cpuMsPerRequest, 2),
        fixed(figures.callsPerRequest, 2),
        fixed(figures.requestsPerS, 1),
        fixed(figures.requestsPerCoreS, 0),
        String(figures.calls),
        String(figures.failed),
        `${fixed(figures.meanLatencyMs, 0)} ms`,
      ]),
    ]),
  );
  lines.push('');
  lines.push('goals (Troupe CPU per provider call / Portkey CPU per relayed call)');
  lines.push(
    alignColumns(
      report.goals.map((goal) => [
        `  ${goal.pass ? 'PASS' : 'MISS'} ${goal.name}`,
        `${fixed(goal.ratio, 2)}×`,
        `(goal ≤ ${goal.goal.toFixed(2)}×)`,
        `against ${goal.against}`,
      ]),
    ),
  );
  lines.push(
    `Troupe chats per second per core: one-call ${fixed(report.troupeOneCall.requestsPerCoreS, 0)}, ` +
      `multi-agent ${fixed(report.troupeMultiAgent.requestsPerCoreS, 1)} ` +
      `(${fixed(report.troupeMultiAgent.requestsPerCoreS * report.troupeMultiAgent.callsPerRequest, 0)} provider calls/s per core)`,
  );
  return lines.join('\n');
}

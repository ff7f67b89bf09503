import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BenchOptions } from './bench-options';
import { startClosedLoop } from './closed-loop';
import { portkeyCall, troupeMultiAgent, troupeOneCall, type CpuRequest } from './cpu-clients';
import { cpuFigures, cpuGoals, formatCpuReport, type CpuMeasurement, type CpuReport } from './cpu-report';
import { startPortkey } from './portkey-process';
import { getJson, readProcess, type SimStats } from './resource-sampler';
import { machineInfo } from './run-scenario';
import type { RunSpec } from './scenarios';
import {
  REPO_ROOT,
  startSimServer,
  startTroupeServer,
  troupeEnvAgainstSim,
  type ChildServer,
} from './server-processes';

/**
 * The `cpu` scenario (issue 14): one sim-llm with no quota pressure, then in turn a Troupe for
 * one-call JSON chats, a Troupe for multi-agent SSE chats, and Portkey relaying the one-call
 * chat's request (non-streamed, then streamed; one Portkey process for each), each driven by the
 * same closed loop. A server's CPU time (utime + stime from /proc, so the load generator and the
 * sim are not in it) over the measured window, divided by the provider calls sim-llm completed in
 * it, is its CPU per call.
 * Servers run one at a time, so none competes with another for the two cores.
 */

export interface CpuRunResult {
  report: CpuReport;
  directory: string;
  table: string;
}

/**
 * Troupe's limits far above the load: nothing queues, nothing is refused, only CPU is measured.
 * The response cache is off: the seeded messages repeat, and a cached answer makes no provider call
 * (CPU per call would divide by ~0), while Portkey relays every one (its cache is off by default).
 */
const UNLIMITED_TROUPE_ENV: Record<string, string> = {
  LLM_CACHE: 'off',
  LLM_MAX_RPM: '10000000',
  LLM_MAX_CONCURRENT: '100000',
  LLM_QUEUE_MAX: '1000000',
  LLM_CHAT_TARGET_MS: '0',
  SEARCH_MAX_RPM: '10000000',
  SEARCH_MAX_CONCURRENT: '100000',
  SSE_MAX_CONCURRENT: '100000',
};

/** Rounds each server's measured window is split into, interleaved with the other servers' rounds. */
export const CPU_ROUNDS = 4;
/**
 * Each round starts with this much load before its reading, so the window sees a steady state.
 * A server comes to its round from a pause of two or three rounds, and V8 shrinks an idle
 * process's young generation (the memory reducer): back under load it scavenges ~3 times as often
 * and promotes more until the heap has grown back, which takes ~10 s. With a 2 s ramp the reading
 * was mostly that regrowth (Troupe one-call measured alone: 2.1 s of CPU per 600 chats in the 5 s
 * after a 40 s pause, 1.3 s in the next 5 s, 1.0 s steady; docs/BENCHMARKS.md, fourth pass), and
 * it fell unevenly while Portkey's two targets shared one process (it paused less; now each has its own).
 */
const ROUND_RAMP_MS = 10_000;

interface Target {
  label: string;
  server: ChildServer;
  request: CpuRequest;
}

export async function runCpuScenario(options: BenchOptions, spec: RunSpec): Promise<CpuRunResult> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  const directory = path.resolve(REPO_ROOT, options.outDir, `${stamp}-cpu`);
  fs.mkdirSync(directory, { recursive: true });
  const clients = spec.users;
  const quota = spec.quota;
  const startedAt = new Date().toISOString();
  const servers: ChildServer[] = [];
  const dataDirs: string[] = [];
  const sim = await startSimServer(quota, path.join(directory, 'sim-llm.log'));
  const simBaseUrl = `${sim.url}/v1`;

  const startTroupe = async (slug: string, env: Record<string, string>): Promise<ChildServer> => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-bench-cpu-'));
    dataDirs.push(dataDir);
    const troupe = await startTroupeServer(
      { ...troupeEnvAgainstSim(sim.url, dataDir), ...UNLIMITED_TROUPE_ENV, ...env, ...spec.troupeEnv },
      options.runtime,
      path.join(directory, `troupe-${slug}.log`),
    );
    servers.push(troupe);
    // A loaded machine can take a few seconds to answer the first request: ask up to 10 times.
    let answered = false;
    for (let attempt = 0; attempt < 10 && !answered; attempt++)
      answered = (await getJson(`${troupe.url}/api/sse/status`, 5000)) !== undefined;
    if (!answered) throw new Error(`Troupe at ${troupe.url} does not answer`);
    return troupe;
  };

  /** One round of one target: load, a reading once it is steady, another after the slice, then the drain. */
  const round = async (target: Target, windowMs: number): Promise<CpuMeasurement> => {
    const loop = startClosedLoop(clients, target.request);
    await delay(ROUND_RAMP_MS);
    const before = await reading(target.server.pid, sim.url, loop.counters);
    await delay(windowMs);
    const after = await reading(target.server.pid, sim.url, loop.counters);
    await loop.stop();
    return {
      label: target.label,
      cpuSeconds: after.cpuSeconds - before.cpuSeconds,
      calls: after.calls - before.calls,
      completed: after.completed - before.completed,
      failed: after.failed - before.failed,
      windowS: (after.at - before.at) / 1000,
      clients,
      meanLatencyMs: after.latencyMs - before.latencyMs,
    };
  };

  try {
    // Every server is up for the whole run and is measured in rounds taking turns, so a change in
    // the machine's load (other processes share the two cores) falls on all of them alike.
    const oneCall = await startTroupe('one-call', { TOOL_MAX_ROUNDS: '0' });
    const multiAgent = await startTroupe('multi-agent', {});
    // One Portkey per target, as Troupe has one server per target: every server measured has the
    // same history — loaded for its own rounds only, idle for the other three — so none is read
    // warmer than another. (One Portkey for both targets was loaded twice as long before each
    // reading, and paused two rounds instead of three.)
    const portkeyForJson = await startPortkey(path.join(directory, 'portkey-json.log'));
    servers.push(portkeyForJson);
    const portkeyForStreams = await startPortkey(path.join(directory, 'portkey-streamed.log'));
    servers.push(portkeyForStreams);
    const targets: Target[] = [
      { label: 'Troupe one-call (JSON)', server: oneCall, request: troupeOneCall(oneCall.url, options.seed) },
      {
        label: 'Troupe multi-agent (SSE)',
        server: multiAgent,
        request: troupeMultiAgent(multiAgent.url, options.seed, 120_000),
      },
      {
        label: 'Portkey relaying (JSON)',
        server: portkeyForJson,
        request: portkeyCall(portkeyForJson.url, simBaseUrl, options.seed, false),
      },
      {
        label: 'Portkey relaying (streamed)',
        server: portkeyForStreams,
        request: portkeyCall(portkeyForStreams.url, simBaseUrl, options.seed, true),
      },
    ];
    // Warm-up (JIT, connection pools, first GCs), not measured.
    for (const target of targets) await round(target, Math.max(0, spec.warmupS * 1000 - ROUND_RAMP_MS));
    const totals = targets.map((target) => ({ ...zeroMeasurement(target.label), clients }));
    const sliceMs = (spec.durationS * 1000) / CPU_ROUNDS;
    for (let index = 0; index < CPU_ROUNDS; index++) {
      for (const [position, target] of targets.entries()) {
        const measured = await round(target, sliceMs);
        const total = totals[position];
        total.cpuSeconds += measured.cpuSeconds;
        total.calls += measured.calls;
        total.completed += measured.completed;
        total.failed += measured.failed;
        total.windowS += measured.windowS;
        total.meanLatencyMs += measured.meanLatencyMs;
        if (!options.quiet)
          process.stderr.write(
            `cpu: round ${index + 1}/${CPU_ROUNDS} ${target.label}: ${((measured.cpuSeconds * 1000) / Math.max(1, measured.calls)).toFixed(2)} ms CPU per call, ${measured.calls} calls, ${measured.failed} failed\n`,
          );
      }
    }
    // meanLatencyMs was summed as total latency: now the mean.
    const [troupeOneCallFigures, troupeMultiAgentFigures, portkeyJson, portkeyStreamed] = totals.map(
      (total) =>
        cpuFigures({
          ...total,
          meanLatencyMs: total.completed > 0 ? total.meanLatencyMs / total.completed : NaN,
        }),
    );
    const measured = {
      troupeOneCall: troupeOneCallFigures,
      troupeMultiAgent: troupeMultiAgentFigures,
      portkeyJson,
      portkeyStreamed,
    };
    const machine = machineInfo();
    const report: CpuReport = {
      scenario: 'cpu',
      startedAt,
      command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
      ...(gitCommit() ? { commit: gitCommit() } : {}),
      machine: `${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGiB} GiB, Node ${machine.node}, ${machine.os}`,
      settings: {
        clients,
        warmupS: spec.warmupS,
        windowS: spec.durationS,
        rounds: CPU_ROUNDS,
        rampS: ROUND_RAMP_MS / 1000,
        sim: { latencyMs: quota.latencyMs, tps: quota.tps, rpm: quota.rpm, concurrency: quota.concurrency },
        runtime: options.runtime,
      },
      ...measured,
      goals: cpuGoals(measured),
    };
    const table = formatCpuReport(report);
    fs.writeFileSync(path.join(directory, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
    fs.writeFileSync(path.join(directory, 'table.txt'), `${table}\n`);
    return { report, directory, table };
  } finally {
    for (const server of servers) await server.stop();
    await sim.stop();
    for (const dataDir of dataDirs) fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

function zeroMeasurement(label: string): CpuMeasurement {
  return {
    label,
    cpuSeconds: 0,
    calls: 0,
    completed: 0,
    failed: 0,
    windowS: 0,
    clients: 0,
    meanLatencyMs: 0,
  };
}

interface Reading {
  at: number;
  cpuSeconds: number;
  calls: number;
  completed: number;
  failed: number;
  latencyMs: number;
}

async function reading(
  pid: number,
  simUrl: string,
  counters: { completed: number; failed: number; latencyMs: number },
): Promise<Reading> {
  const stats = await getJson<SimStats>(`${simUrl}/sim/stats`);
  const process = readProcess(pid);
  if (!stats || !process) throw new Error('cpu: the server or sim-llm stopped answering mid-run');
  return { at: Date.now(), cpuSeconds: process.cpuSeconds, calls: stats.completed, ...counters };
}

function gitCommit(): string | undefined {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    }).trim();
    return dirty ? `${commit}+changes` : commit;
  } catch {
    return undefined;
  }
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

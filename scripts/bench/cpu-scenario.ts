import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BenchOptions } from './bench-options';
import { startClosedLoop } from './closed-loop';
import { portkeyCall, troupeMultiAgent, troupeOneCall, type CpuRequest } from './cpu-clients';
import { cpuFigures, cpuGoals, formatCpuReport, type CpuFigures, type CpuReport } from './cpu-report';
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
 * chat's request (non-streamed, then streamed), each driven by the same closed loop. A server's
 * CPU time (utime + stime from /proc, so the load generator and the sim are not in it) over the
 * measured window, divided by the provider calls sim-llm completed in it, is its CPU per call.
 * Servers run one at a time, so none competes with another for the two cores.
 */

export interface CpuRunResult {
  report: CpuReport;
  directory: string;
  table: string;
}

/** Troupe's limits far above the load: nothing queues, nothing is refused, only CPU is measured. */
const UNLIMITED_TROUPE_ENV: Record<string, string> = {
  LLM_MAX_RPM: '10000000',
  LLM_MAX_CONCURRENT: '100000',
  LLM_QUEUE_MAX: '1000000',
  LLM_CHAT_TARGET_MS: '0',
  SEARCH_MAX_RPM: '10000000',
  SEARCH_MAX_CONCURRENT: '100000',
  SSE_MAX_CONCURRENT: '100000',
};

export async function runCpuScenario(options: BenchOptions, spec: RunSpec): Promise<CpuRunResult> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  const directory = path.resolve(REPO_ROOT, options.outDir, `${stamp}-cpu`);
  fs.mkdirSync(directory, { recursive: true });
  const clients = spec.users;
  const warmupMs = spec.warmupS * 1000;
  const windowMs = spec.durationS * 1000;
  const quota = spec.quota;
  const startedAt = new Date().toISOString();
  const sim = await startSimServer(quota, path.join(directory, 'sim-llm.log'));
  const simBaseUrl = `${sim.url}/v1`;

  const measure = async (label: string, server: ChildServer, request: CpuRequest): Promise<CpuFigures> => {
    const loop = startClosedLoop(clients, request);
    await delay(warmupMs);
    const before = await reading(server.pid, sim.url, loop.counters);
    await delay(windowMs);
    const after = await reading(server.pid, sim.url, loop.counters);
    await loop.stop();
    const figures = cpuFigures({
      label,
      cpuSeconds: after.cpuSeconds - before.cpuSeconds,
      calls: after.calls - before.calls,
      completed: after.completed - before.completed,
      failed: after.failed - before.failed,
      windowS: (after.at - before.at) / 1000,
      clients,
      meanLatencyMs:
        after.completed > before.completed
          ? (after.latencyMs - before.latencyMs) / (after.completed - before.completed)
          : NaN,
    });
    if (!options.quiet)
      process.stderr.write(
        `cpu: ${label}: ${figures.cpuMsPerCall.toFixed(2)} ms CPU per call, ${figures.requestsPerS.toFixed(1)} requests/s, ${figures.failed} failed\n`,
      );
    return figures;
  };

  const troupePhase = async (
    label: string,
    slug: string,
    env: Record<string, string>,
    request: (url: string) => CpuRequest,
  ) => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-bench-cpu-'));
    const troupe = await startTroupeServer(
      { ...troupeEnvAgainstSim(sim.url, dataDir), ...UNLIMITED_TROUPE_ENV, ...env, ...spec.troupeEnv },
      options.runtime,
      path.join(directory, `troupe-${slug}.log`),
    );
    try {
      if ((await getJson(`${troupe.url}/api/sse/status`)) === undefined)
        throw new Error(`Troupe at ${troupe.url} does not answer`);
      return await measure(label, troupe, request(troupe.url));
    } finally {
      await troupe.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  };

  try {
    const troupeOneCallFigures = await troupePhase(
      'Troupe one-call (JSON)',
      'one-call',
      { TOOL_MAX_ROUNDS: '0' },
      (url) => troupeOneCall(url, options.seed),
    );
    const troupeMultiAgentFigures = await troupePhase('Troupe multi-agent (SSE)', 'multi-agent', {}, (url) =>
      troupeMultiAgent(url, options.seed, 120_000),
    );
    const portkey = await startPortkey(path.join(directory, 'portkey.log'));
    let portkeyJson: CpuFigures;
    let portkeyStreamed: CpuFigures;
    try {
      portkeyJson = await measure(
        'Portkey relaying (JSON)',
        portkey,
        portkeyCall(portkey.url, simBaseUrl, options.seed, false),
      );
      portkeyStreamed = await measure(
        'Portkey relaying (streamed)',
        portkey,
        portkeyCall(portkey.url, simBaseUrl, options.seed, true),
      );
    } finally {
      await portkey.stop();
    }
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
    await sim.stop();
  }
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

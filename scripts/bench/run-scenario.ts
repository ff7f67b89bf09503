import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { buildReport, type BenchReport, type MachineInfo } from './bench-report';
import { falseRefusalTarget } from './report-targets';
import { countFalseRefusals } from './false-refusals';
import { renderChart } from './bench-chart';
import { formatReportTable } from './bench-table';
import type { BenchOptions } from './bench-options';
import { now, runChat, type ChatRecord } from './chat-client';
import { composeMessage } from './chat-messages';
import { zeroCounters } from './load-driver';
import { startLoadGroup, type LoadGroup } from './load-group';
import { ProgressBar } from './progress-bar';
import { ResourceSampler, getJson, postJson, readDiagnostics, type SimStats } from './resource-sampler';
import { applyScale, type RunSpec } from './scenarios';
import { failoverSummary, startClusterTarget, type ClusterTarget } from './cluster-target';
import { clusterSummaryLine, scheduleClusterFaults, type ScheduledFaults } from './cluster-faults';
import { inspectCluster, leaseLine, redisScriptWork } from './cluster-leases';
import {
  REPO_ROOT,
  startSimServer,
  startTroupeServer,
  troupeEnvAgainstSim,
  type ChildServer,
} from './server-processes';

/**
 * One run of a scenario variant from start to report: sim-llm and Troupe as child processes (or
 * the --url target), a baseline reading, the arrival phase with the progress bar and the sampler,
 * the drain, the final counters, then JSON + SVG + table written under the results folder.
 */

export interface RunResult {
  report: BenchReport;
  directory: string;
  table: string;
  /** Every chat of the run (with admission on, when it was replayed). */
  records: ChatRecord[];
}

export interface RunControl {
  /** Set by the caller's SIGINT handler: the first stops arrivals, the second ends every stream. */
  onInterrupt?: (level: number) => void;
}

export async function runScenario(
  options: BenchOptions,
  spec: RunSpec,
  control: RunControl,
): Promise<RunResult> {
  const result = await runOnce(options, spec, control);
  if (!spec.replay || options.url) return result;
  // The same arrivals (same seed, same users) with admission off: which refused chats would have
  // completed within the chat's deadline anyway?
  const replay = await runOnce(
    options,
    {
      ...spec,
      variant: `${spec.variant} (replay, admission off)`,
      troupeEnv: { ...spec.troupeEnv, LLM_ADMISSION: 'off' },
    },
    control,
    { write: false },
  );
  const report = result.report;
  report.admission = countFalseRefusals(result.records, replay.records, applyScale(spec), report.admission, {
    callsPerS: report.goodput.bound.mu,
    callsPerChat: report.goodput.callsPerCompletedChat,
  });
  const falseRefusals = falseRefusalTarget(report);
  if (falseRefusals) report.targets.push(falseRefusals);
  const table = formatReportTable(report);
  fs.writeFileSync(path.join(result.directory, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  fs.writeFileSync(path.join(result.directory, 'table.txt'), `${table}\n`);
  return { ...result, report, table };
}

async function runOnce(
  options: BenchOptions,
  spec: RunSpec,
  control: RunControl,
  output: { write: boolean } = { write: true },
): Promise<RunResult> {
  const run = applyScale(spec);
  const scenario = options.scenario;
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  const slug = `${scenario.name}${scenario.runs.length > 1 ? `-${spec.variant.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}` : ''}`;
  const directory = path.resolve(REPO_ROOT, options.outDir, `${stamp}-${slug}`);
  fs.mkdirSync(directory, { recursive: true });
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-bench-'));
  const diagnosticsFile = path.join(directory, 'server-diagnostics.ndjson');

  let sim: ChildServer | undefined;
  let troupe: ChildServer | undefined;
  let cluster: ClusterTarget | undefined;
  let faults: ScheduledFaults | undefined;
  let troupeExit: number | null | undefined;
  try {
    let troupeUrl = options.url;
    let simUrl = options.simUrl;
    if (!troupeUrl) {
      sim = await startSimServer(run.quota, path.join(directory, 'sim-llm.log'));
      simUrl = sim.url;
    }
    if (!troupeUrl && spec.cluster) {
      cluster = await startClusterTarget({
        spec: spec.cluster,
        simUrl: sim!.url,
        dataDir,
        // No diagnostics file: three processes appending to one would interleave their lines.
        env: { ...run.troupeEnv },
        runtime: options.runtime,
        directory,
      });
      troupeUrl = cluster.url;
      // The sampler reads one instance: the first, which is never the one killed.
      troupe = cluster.instances[0];
    } else if (!troupeUrl) {
      troupe = await startTroupeServer(
        {
          ...troupeEnvAgainstSim(sim!.url, dataDir),
          BENCH_DIAGNOSTICS_FILE: diagnosticsFile,
          ...run.troupeEnv,
        },
        options.runtime,
        path.join(directory, 'troupe.log'),
      );
      troupeUrl = troupe.url;
      void troupe.exited.then((code) => {
        troupeExit ??= code;
      });
    }
    // On a loaded machine a fresh server can take a few seconds to answer its first request.
    let health: unknown;
    for (let attempt = 0; attempt < 10 && health === undefined; attempt++) {
      health = await getJson<unknown>(`${troupeUrl}/api/sse/status`, 3000);
    }
    if (health === undefined) throw new Error(`Troupe at ${troupeUrl} does not answer`);
    // A cold run meets its load as started: no warm-up chat measures the provider first.
    if (!spec.coldStart) await warmUp(troupeUrl, run.clientTimeoutMs);
    if (simUrl) await postJson(`${simUrl}/sim/reset`);

    const durationMs = spec.durationS * 1000;
    const plan = {
      url: troupeUrl,
      arrival: spec.arrival,
      users: spec.users,
      userOffset: 0,
      thinkMs: run.thinkMs,
      rampMs: spec.rampS * 1000,
      arrivalRatePerS: run.arrivalRatePerS,
      durationMs,
      timeoutMs: run.clientTimeoutMs,
      seed: options.seed,
      maxOpen: 9000 * Math.max(1, spec.workers),
      failover: spec.cluster !== undefined,
      ...(spec.mix ? { mix: spec.mix } : {}),
    };
    // The sampler starts (baseline) before the load generator exists; it reads it through this holder.
    const load: { group?: LoadGroup } = {};
    const sampler = new ResourceSampler({
      troupePid: troupe?.pid,
      troupeUrl: cluster ? cluster.instances[0].url : troupeUrl,
      simPid: sim?.pid,
      simUrl,
      loadCpuSeconds: () => load.group?.cpuSeconds() ?? 0,
      counters: () => load.group?.counters() ?? zeroCounters(),
    });
    // Let the freshly started server settle (JIT, first GC) before its resting memory is read; a
    // cold run's load comes as soon as the server answers, as a deploy's first users do.
    if (!spec.coldStart) await delay(1500);
    await sampler.sample();
    const baseline = await sampler.sample();
    sampler.samples.length = 0;

    const scriptsBefore = cluster ? await redisScriptWork(cluster.redisUrl) : undefined;
    const loadGroup = await startLoadGroup(plan, spec.workers);
    load.group = loadGroup;
    const startAt = loadGroup.startAt;
    const shiftTimers = (spec.latencyShifts ?? []).map((shift) =>
      setTimeout(
        () => {
          if (!simUrl) return;
          void postJson(`${simUrl}/sim/pace`, {
            latencyMs: run.quota.latencyMs * shift.factor,
            tps: run.quota.tps / shift.factor,
          });
        },
        Math.max(0, startAt + shift.atS * 1000 - now()),
      ),
    );
    const arrivalsEndAt = startAt + durationMs;
    sampler.start(1000);
    const progress = new ProgressBar(
      {
        label: `${scenario.name}${scenario.runs.length > 1 ? ` (${spec.variant})` : ''}`,
        startAt,
        arrivalsEndAt,
        counters: () => loadGroup.counters(),
        lastSample: () => sampler.samples[sampler.samples.length - 1],
      },
      now,
    );
    if (!options.quiet) progress.start();
    control.onInterrupt = (level) => (level === 1 ? loadGroup.stopArrivals() : loadGroup.releaseAll());
    if (cluster && spec.cluster)
      faults = scheduleClusterFaults({
        cluster,
        spec: spec.cluster,
        startAt,
        durationMs,
        now,
        say: options.quiet ? undefined : (line) => process.stderr.write(`\n${line}\n`),
      });

    const records = await loadGroup.finished;
    // An outage still on when the chats drained ends with them.
    faults?.finish();
    for (const timer of shiftTimers) clearTimeout(timer);
    const drainedAt = now();
    if (!options.quiet) progress.stop();
    // Calls the server still has in flight (a cancelled chat's last call) land before the counters are read.
    const sim429 = await settleSim(simUrl);
    // The leak check: once the burst has drained, every lease in Redis must belong to a running call.
    const { leases, dispatch } = cluster
      ? await inspectCluster(cluster, faults?.facts.killed !== undefined)
      : { leases: undefined, dispatch: undefined };
    const scriptsAfter = cluster ? await redisScriptWork(cluster.redisUrl) : undefined;
    let afterRelease: { rssMb?: number; waiting?: number } | undefined;
    if (spec.arrival === 'hold') {
      await delay(3000);
      const sample = await sampler.sample();
      afterRelease = {
        rssMb: sample.troupe ? sample.troupe.rssKb / 1024 : undefined,
        waiting: sample.sse?.waiting,
      };
    }
    sampler.stop();
    const finalSample = await sampler.sample();

    const report = buildReport({
      scenario: scenario.name,
      summary: scenario.summary,
      command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
      machine: machineInfo(),
      run,
      targetUrl: troupeUrl,
      managed: !options.url,
      runtime: options.url ? undefined : options.runtime,
      startAt,
      warmupEndAt: startAt + spec.warmupS * 1000,
      arrivalsEndAt,
      endedAt: Math.max(drainedAt, finalSample.at),
      records,
      samples: sampler.samples,
      baseline,
      sim: sim429,
      serverExitCode: troupeExit,
      diagnostics: readDiagnostics(diagnosticsFile),
    });
    if (afterRelease && report.streams) {
      report.streams.rssAfterReleaseMb = afterRelease.rssMb;
      report.streams.waitingAfterRelease = afterRelease.waiting;
    }
    let table = formatReportTable(report);
    // A replay's results are not kept; its folder goes once the servers writing logs into it stopped.
    if (!output.write) return { report, directory, table, records };
    if (cluster) {
      const failover = failoverSummary(records);
      const facts = faults?.facts ?? {};
      const clusterFacts = {
        instances: cluster.instances.length,
        ...facts,
        ...failover,
        leases,
        redisDispatch: dispatch,
        redisScripts: { before: scriptsBefore, after: scriptsAfter },
      };
      fs.writeFileSync(path.join(directory, 'cluster.json'), `${JSON.stringify(clusterFacts, null, 2)}\n`);
      table += `\n${clusterSummaryLine(cluster.instances.length, facts, failover)}`;
      const leaseText = leaseLine(leases, dispatch, { before: scriptsBefore, after: scriptsAfter });
      if (leaseText) table += `\n${leaseText}`;
    }
    fs.writeFileSync(path.join(directory, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
    fs.writeFileSync(path.join(directory, 'chart.svg'), renderChart(report));
    fs.writeFileSync(path.join(directory, 'table.txt'), `${table}\n`);
    fs.writeFileSync(
      path.join(directory, 'samples.json'),
      `${JSON.stringify({ baseline, samples: sampler.samples })}\n`,
    );
    fs.writeFileSync(
      path.join(directory, 'chats.ndjson'),
      records.map((record) => JSON.stringify(record)).join('\n') + '\n',
    );
    return { report, directory, table, records };
  } finally {
    control.onInterrupt = undefined;
    if (cluster) await cluster.stop();
    else await troupe?.stop();
    await sim?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
    if (!output.write) fs.rmSync(directory, { recursive: true, force: true });
  }
}

/** Chats sent before the measured run, their results discarded. */
export const WARM_UP_CHATS = 3;

/**
 * A freshly started Node server answers its first few hundred requests slowly (lazy modules, JIT,
 * the first store writes, the provider's connection pool): up to a second in a cold start, which
 * would land in the refusal and first-event figures. A few chats first take every path once. They
 * cost ~13 provider calls before the sim's counters are reset (Troupe's own window still counts
 * them, which only makes its first minute slightly more conservative).
 */
async function warmUp(troupeUrl: string, timeoutMs: number): Promise<void> {
  const agent = new http.Agent({ keepAlive: true });
  const target = { url: new URL(troupeUrl), agent };
  await Promise.all(
    Array.from({ length: WARM_UP_CHATS }, (_, index) =>
      runChat(
        target,
        {
          user: -1 - index,
          userId: `bench-warm-up-${index}`,
          kind: 'long',
          message: composeMessage('long', index / WARM_UP_CHATS),
        },
        { timeoutMs },
      ),
    ),
  );
  agent.destroy();
}

/** Waits (up to 10 s) until the sim has nothing in flight, then returns its counters. */
async function settleSim(simUrl: string | undefined): Promise<SimStats | undefined> {
  if (!simUrl) return undefined;
  let stats: SimStats | null | undefined;
  for (let attempt = 0; attempt < 20; attempt++) {
    stats = await getJson<SimStats>(`${simUrl}/sim/stats`);
    if (stats && stats.inFlight === 0) return stats;
    await delay(500);
  }
  return stats ?? undefined;
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  let openFilesLimit: number | undefined;
  try {
    const match = /Max open files\s+(\d+)/.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    if (match) openFilesLimit = Number(match[1]);
  } catch {
    // Not Linux: the limit is simply not reported.
  }
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    os: `${os.type()} ${os.release()}`,
    ...(openFilesLimit !== undefined ? { openFilesLimit } : {}),
  };
}

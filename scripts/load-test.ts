/**
 * npm run load-test -- [--rpm 500] [--concurrency 50] [--latency-ms 500] [--tps 50]
 *                      [--runtime dist|tsx] [--quick] [--artillery "<command>"]
 *
 * Troupe's Artillery load test (load-test.yml) against a Troupe that sits on a real quota: starts
 * sim-llm with the quota and Troupe with LLM_PROVIDER=openai and its limits at that quota (each in
 * its own process), runs Artillery at Troupe, then prints what Artillery cannot see: the provider's
 * own counters (calls and 429s, in total and per phase, read from sim-llm's /sim/stats once a
 * second), Troupe's LLM cache, peak memory and CPU, and — last — completed / refused / failed chats
 * (per scenario too) and the completed-chat time. --quick runs 10 s + 20 s instead of 60 s + 300 s.
 * Artillery 2.0.21 is the newest that runs on Node 20; the wrapper uses node_modules/.bin/artillery
 * when it is installed, else `npx -y artillery@2.0.21`.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ResourceSampler, getJson, type SimStats } from './bench/resource-sampler';
import {
  REPO_ROOT,
  startSimServer,
  startTroupeServer,
  troupeEnvAgainstSim,
  type ChildServer,
  type TroupeRuntime,
} from './bench/server-processes';
import { zeroCounters } from './bench/load-driver';
import { parse as parseYaml } from 'yaml';
import {
  providerByPhase,
  summaryLines,
  type ArtilleryReport,
  type LoadPhase,
  type ProviderCounters,
} from './bench/artillery-summary';
import { BRIEF_QUOTA, type ProviderQuota } from './bench/scenarios';

export const ARTILLERY_VERSION = '2.0.21';

interface LoadTestOptions {
  quota: ProviderQuota;
  runtime: TroupeRuntime;
  quick: boolean;
  artillery?: string;
}

/** --quick: the same two phases, shorter. */
const QUICK_PHASES: LoadPhase[] = [
  { name: 'warm-up: 10 new users/s', duration: 10, arrivalRate: 10 },
  { name: 'sustained: 50 new users/s', duration: 20, arrivalRate: 50 },
];

const USAGE =
  'usage: npm run load-test -- [--rpm 500] [--concurrency 50] [--latency-ms 500] [--tps 50] [--runtime dist|tsx] [--quick] [--artillery "<command>"]';

function parseArgs(argv: string[]): LoadTestOptions {
  const options: LoadTestOptions = { quota: { ...BRIEF_QUOTA }, runtime: 'tsx', quick: false };
  const quotaFlags: Record<string, keyof ProviderQuota> = {
    '--rpm': 'rpm',
    '--concurrency': 'concurrency',
    '--latency-ms': 'latencyMs',
    '--tps': 'tps',
  };
  for (let index = 0; index < argv.length; index++) {
    const flag = argv[index];
    if (flag === '--help' || flag === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else if (flag === '--quick') {
      options.quick = true;
    } else if (flag in quotaFlags || flag === '--runtime' || flag === '--artillery') {
      const value = argv[++index];
      if (value === undefined) fail(`${flag} needs a value`);
      if (flag === '--runtime') {
        if (value !== 'dist' && value !== 'tsx') fail('--runtime must be dist or tsx');
        options.runtime = value as TroupeRuntime;
      } else if (flag === '--artillery') {
        options.artillery = value;
      } else {
        const number = Number(value);
        if (!Number.isFinite(number) || number < (flag === '--latency-ms' ? 0 : 1))
          fail(`${flag}=${JSON.stringify(value)} — expected a positive number`);
        options.quota[quotaFlags[flag]] = number;
      }
    } else {
      fail(`unknown flag ${JSON.stringify(flag)}; ${USAGE}`);
    }
  }
  return options;
}

function fail(message: string): never {
  process.stderr.write(`load-test: ${message}\n`);
  process.exit(2);
}

/** The Artillery command: the installed dev dependency, or npx fetching the pinned version. */
function artilleryCommand(explicit: string | undefined): string[] {
  if (explicit) return explicit.split(/\s+/).filter(Boolean);
  const local = path.join(REPO_ROOT, 'node_modules', '.bin', 'artillery');
  return fs.existsSync(local) ? [local] : ['npx', '-y', `artillery@${ARTILLERY_VERSION}`];
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  const directory = path.join(REPO_ROOT, 'bench-results', `${stamp}-artillery`);
  fs.mkdirSync(directory, { recursive: true });
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-load-test-'));
  let sim: ChildServer | undefined;
  let troupe: ChildServer | undefined;
  try {
    sim = await startSimServer(options.quota, path.join(directory, 'sim-llm.log'));
    troupe = await startTroupeServer(
      {
        ...troupeEnvAgainstSim(sim.url, dataDir),
        LLM_MAX_CONCURRENT: String(options.quota.concurrency),
        LLM_MAX_RPM: String(options.quota.rpm),
      },
      options.runtime,
      path.join(directory, 'troupe.log'),
    );
    process.stdout.write(
      `sim-llm ${sim.url} (${options.quota.rpm} rpm, ${options.quota.concurrency} concurrent, ${options.quota.latencyMs} ms + ${options.quota.tps} tok/s); Troupe ${troupe.url}\n`,
    );
    const sampler = new ResourceSampler({
      troupePid: troupe.pid,
      troupeUrl: troupe.url,
      simPid: sim.pid,
      simUrl: sim.url,
      loadCpuSeconds: () => 0,
      counters: zeroCounters,
    });
    sampler.start(1000);
    const command = artilleryCommand(options.artillery);
    const scenarioFile = path.join(REPO_ROOT, 'load-test.yml');
    const phases = options.quick ? QUICK_PHASES : phasesOf(scenarioFile);
    const args = ['run', '--target', troupe.url, '--output', path.join(directory, 'artillery.json')];
    if (options.quick) args.push('--overrides', JSON.stringify({ config: { phases: QUICK_PHASES } }));
    args.push(scenarioFile);
    const runStartedAt = Date.now();
    process.stdout.write(`${[...command, ...args].join(' ')}\n`);
    // Artillery's own output goes through as it comes; its "Phase started" lines time the phases.
    const phaseStarts: Array<number | undefined> = [];
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(command[0], [...command.slice(1), ...args], {
        cwd: REPO_ROOT,
        stdio: ['inherit', 'pipe', 'inherit'],
        // Artillery's optional browser engine would otherwise try to download Chromium.
        env: { ...process.env, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: '1', ARTILLERY_DISABLE_TELEMETRY: 'true' },
      });
      let pending = '';
      child.stdout.on('data', (chunk: Buffer) => {
        process.stdout.write(chunk);
        pending += chunk.toString();
        const lines = pending.split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) {
          const phase = /Phase started:.*\(index: (\d+)/.exec(line);
          if (phase) phaseStarts[Number(phase[1])] ??= Date.now() - runStartedAt;
        }
      });
      child.once('exit', resolve);
      child.once('error', (error) => {
        process.stderr.write(`load-test: could not run ${command.join(' ')}: ${error.message}\n`);
        resolve(1);
      });
    });
    sampler.stop();
    const stats = await getJson<SimStats>(`${sim.url}/sim/stats`);
    const readings = sampler.samples.flatMap((sample) =>
      sample.sim?.stats
        ? [{ at: sample.at - runStartedAt, stats: sample.sim.stats as ProviderCounters }]
        : [],
    );
    if (stats) readings.push({ at: Date.now() - runStartedAt, stats });
    const cache = await getJson<{ queue?: { cache?: CacheFigures } }>(`${troupe.url}/api/queue/status`);
    const peakRssKb = Math.max(0, ...sampler.samples.map((sample) => sample.troupe?.peakRssKb ?? 0));
    const cpu = sampler.samples.map((sample) => sample.troupe?.cpuPercent ?? 0);
    process.stdout.write(
      `\nprovider (sim-llm): ${stats ? `${stats.requests} requests, ${stats.accepted} accepted, ${stats.rejected429} answered 429, ${stats.aborted} aborted, max ${stats.maxInFlight} in flight` : 'no counters'}\n` +
        `${cacheLine(cache?.queue?.cache)}\n` +
        `Troupe: peak RSS ${Math.round(peakRssKb / 1024)} MB, CPU mean ${Math.round(cpu.reduce((sum, value) => sum + value, 0) / Math.max(1, cpu.length))} %, peak ${Math.round(Math.max(0, ...cpu))} % of one core\n` +
        `results: ${directory}\n`,
    );
    const reportFile = path.join(directory, 'artillery.json');
    const report = fs.existsSync(reportFile)
      ? (JSON.parse(fs.readFileSync(reportFile, 'utf8')) as ArtilleryReport)
      : {};
    process.stdout.write(
      `\n${summaryLines(report, stats ?? undefined, providerByPhase(phases, readings, phaseStarts)).join('\n')}\n`,
    );
    fs.writeFileSync(
      path.join(directory, 'provider.json'),
      `${JSON.stringify({ quota: options.quota, sim: stats, peakRssKb }, null, 2)}\n`,
    );
    process.exitCode = code ?? 1;
  } finally {
    await troupe?.stop();
    await sim?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

/** The phases load-test.yml declares (config.phases). */
function phasesOf(file: string): LoadPhase[] {
  const parsed = parseYaml(fs.readFileSync(file, 'utf8')) as { config?: { phases?: LoadPhase[] } };
  return parsed.config?.phases ?? [];
}

interface CacheFigures {
  cacheHitRate: string;
  hits: number;
  sharedHits: number;
  misses: number;
}

function cacheLine(cache: CacheFigures | undefined): string {
  return cache
    ? `Troupe's LLM response cache: ${cache.hits} hits + ${cache.sharedHits} joined a call in flight, ${cache.misses} went to the provider (${cache.cacheHitRate} of calls saved)`
    : "Troupe's LLM response cache: no figures";
}

main().catch((error: unknown) => {
  process.stderr.write(`load-test: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});

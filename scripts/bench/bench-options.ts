import { matrixScenario } from './matrix';
import { SCENARIOS, type RunSpec, type Scenario } from './scenarios';
import type { TroupeRuntime } from './server-processes';

/** `npm run bench -- …` flags, parsed and checked once; a bad flag is one line and exit code 2. */

export interface BenchOptions {
  scenario: Scenario;
  /** Target an already running Troupe instead of starting sim-llm and Troupe. */
  url?: string;
  /** With --url: the sim-llm behind it, for the 429 and waste counters. */
  simUrl?: string;
  runtime: TroupeRuntime;
  outDir: string;
  seed: number;
  /** Only the variant whose label contains this (priority, phase2, matrix). */
  only?: string;
  /** matrix: the first N workloads (after --only). */
  limit?: number;
  /** matrix: three short workloads, one per arrival shape, one on 3 instances. */
  quick?: boolean;
  quiet: boolean;
}

/** Scenario names for the usage and the errors: the fixed ones, and the generated matrix. */
const SCENARIO_NAMES = [...Object.keys(SCENARIOS), 'matrix'];

export class BenchArgumentError extends Error {
  readonly code = 'invalid_argument';
  constructor(message: string) {
    super(message);
    this.name = 'BenchArgumentError';
  }
}

export const BENCH_USAGE = `usage: npm run bench -- --scenario NAME [options]

scenarios: ${SCENARIO_NAMES.join(', ')}
settings compared side by side (own flags: --users, --questions-per-user, --ramp-s, --think-s,
  --idle-chats, --overload-s, --part, --seed, --runtime, --out): cache, parallel
several endpoints with fallback (own flags: --duration-s, --rate, --seed, --runtime, --out): endpoints
the gateway beside Troupe's chats, Troupe's /v1 against Portkey (own flags: --quick, --duration-s,
  --seed, --runtime, --out): gateway

  --users N            users (closed loop) or streams (sse-capacity)
  --rpm R              provider requests per minute, unscaled (brief: 500)
  --concurrency C      provider calls in flight (brief: 50)
  --latency-ms L       provider first-token latency, unscaled (default 500)
  --tps T              provider tokens per second, unscaled (default 50)
  --scale X            run X times faster: latency/X, tps*X, rpm*X, think and timeouts/X
  --duration S         wall-clock seconds of arrivals (then the open chats drain)
  --warmup S           wall-clock seconds before goodput is measured
  --ramp S             wall-clock seconds over which users start
  --think S            mean think time between a user's chats, unscaled seconds
  --rate N             open arrivals: new users per second, unscaled (default: 2x capacity)
  --timeout S          the client gives up on a chat after S unscaled seconds
  --workers N          load generator processes (default per scenario)
  --instances N        Troupe instances behind nginx sharing Redis (makes any run a cluster run)
  --kill-at F|none     SIGKILL one instance at fraction F of the arrivals, or none
  --priority-order O   LLM_PRIORITY_ORDER for every run, e.g. reporter,critic,planner,host
  --env KEY=VALUE      extra Troupe environment (repeatable)
  --only TEXT          run only the variant whose label contains TEXT (matrix: a workload id, w07)
  --limit N            matrix: run only the first N workloads
  --quick              matrix: three short workloads (burst, ramp on 3 instances, open)
  --url URL            target a running Troupe (sim-llm and Troupe are not started)
  --sim-url URL        with --url: the sim-llm behind it, for 429 and waste counters
  --runtime dist|tsx   run Troupe from dist/ (npm run build first) or through tsx (default)
  --out DIR            results folder (default bench-results)
  --seed N             seed of users, messages and think times (default 1); matrix: of its workloads
  --quiet              no progress bar`;

type RunOverride = (run: RunSpec, value: string) => RunSpec;

const number = (flag: string, value: string, min: number, integer = false): number => {
  const parsed = Number(value);
  if (
    value.trim() === '' ||
    !Number.isFinite(parsed) ||
    parsed < min ||
    (integer && !Number.isInteger(parsed))
  ) {
    throw new BenchArgumentError(
      `${flag}=${JSON.stringify(value)} — expected ${integer ? 'an integer' : 'a number'} of at least ${min}`,
    );
  }
  return parsed;
};

const RUN_FLAGS: Record<string, RunOverride> = {
  '--users': (run, value) => ({ ...run, users: number('--users', value, 1, true) }),
  '--rpm': (run, value) => ({ ...run, quota: { ...run.quota, rpm: number('--rpm', value, 1) } }),
  '--concurrency': (run, value) => ({
    ...run,
    quota: { ...run.quota, concurrency: number('--concurrency', value, 1, true) },
  }),
  '--latency-ms': (run, value) => ({
    ...run,
    quota: { ...run.quota, latencyMs: number('--latency-ms', value, 0) },
  }),
  '--tps': (run, value) => ({ ...run, quota: { ...run.quota, tps: number('--tps', value, 1) } }),
  '--scale': (run, value) => ({ ...run, scale: number('--scale', value, 0.01) }),
  '--duration': (run, value) => ({ ...run, durationS: number('--duration', value, 1) }),
  '--warmup': (run, value) => ({ ...run, warmupS: number('--warmup', value, 0) }),
  '--ramp': (run, value) => ({ ...run, rampS: number('--ramp', value, 0) }),
  '--think': (run, value) => ({ ...run, thinkS: number('--think', value, 0) }),
  '--rate': (run, value) => ({ ...run, arrivalRatePerS: number('--rate', value, 0.001) }),
  '--timeout': (run, value) => ({ ...run, clientTimeoutS: number('--timeout', value, 1) }),
  '--workers': (run, value) => ({ ...run, workers: number('--workers', value, 1, true) }),
  // The cluster scenario's shape, e.g. `--instances 1` for the one-instance baseline on the same quota.
  '--instances': (run, value) => ({
    ...run,
    cluster: { ...run.cluster, instances: number('--instances', value, 1, true) },
  }),
  '--kill-at': (run, value) => {
    const cluster = { ...run.cluster, instances: run.cluster?.instances ?? 3 };
    if (value === 'none') return { ...run, cluster: { ...cluster, killAtFraction: undefined } };
    const fraction = number('--kill-at', value, 0);
    if (fraction > 1) throw new BenchArgumentError(`--kill-at=${value} — expected a fraction 0–1 or none`);
    return { ...run, cluster: { ...cluster, killAtFraction: fraction } };
  },
  '--priority-order': (run, value) => {
    if (!/^(host|planner|critic|reporter)(,(host|planner|critic|reporter)){3}$/.test(value)) {
      throw new BenchArgumentError(
        `--priority-order=${JSON.stringify(value)} — expected the four agents comma-separated`,
      );
    }
    return { ...run, troupeEnv: { ...run.troupeEnv, LLM_PRIORITY_ORDER: value } };
  },
  '--env': (run, value) => {
    const match = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(value);
    if (!match) throw new BenchArgumentError(`--env=${JSON.stringify(value)} — expected KEY=VALUE`);
    return { ...run, troupeEnv: { ...run.troupeEnv, [match[1]]: match[2] } };
  },
};

/** Parses argv (after `--`); throws BenchArgumentError naming the bad flag. Returns undefined for --help. */
export function parseBenchArgs(argv: string[]): BenchOptions | undefined {
  let scenarioName: string | undefined;
  const overrides: Array<[RunOverride, string]> = [];
  // The matrix sizes its arrivals for its scale: --scale is given to the generator too.
  let matrixScale: number | undefined;
  const options: Omit<BenchOptions, 'scenario'> = {
    runtime: 'tsx',
    outDir: 'bench-results',
    seed: 1,
    quiet: false,
  };
  for (let index = 0; index < argv.length; index++) {
    const argument = argv[index];
    if (argument === '--help' || argument === '-h') return undefined;
    if (argument === '--quiet') {
      options.quiet = true;
      continue;
    }
    if (argument === '--quick') {
      options.quick = true;
      continue;
    }
    const equals = argument.indexOf('=');
    const flag = argument.startsWith('--') && equals > 0 ? argument.slice(0, equals) : argument;
    const known =
      flag in RUN_FLAGS ||
      ['--scenario', '--url', '--sim-url', '--runtime', '--out', '--seed', '--only', '--limit'].includes(
        flag,
      );
    if (!known) throw new BenchArgumentError(`unknown flag ${JSON.stringify(argument)} (see --help)`);
    const value = equals > 0 && flag !== argument ? argument.slice(equals + 1) : argv[++index];
    if (value === undefined) throw new BenchArgumentError(`${flag} needs a value`);
    if (flag in RUN_FLAGS) overrides.push([RUN_FLAGS[flag], value]);
    if (flag === '--scale') matrixScale = number('--scale', value, 0.01);
    else if (flag === '--scenario') scenarioName = value;
    else if (flag === '--url') options.url = checkUrl(flag, value);
    else if (flag === '--sim-url') options.simUrl = checkUrl(flag, value);
    else if (flag === '--out') options.outDir = value;
    else if (flag === '--only') options.only = value;
    else if (flag === '--seed') options.seed = number('--seed', value, 0, true);
    else if (flag === '--limit') options.limit = number('--limit', value, 1, true);
    else if (flag === '--runtime') {
      if (value !== 'dist' && value !== 'tsx')
        throw new BenchArgumentError(`--runtime=${JSON.stringify(value)} — expected dist or tsx`);
      options.runtime = value;
    }
  }
  if (!scenarioName)
    throw new BenchArgumentError(`--scenario is required: one of ${SCENARIO_NAMES.join(', ')}`);
  if ((options.limit !== undefined || options.quick) && scenarioName !== 'matrix')
    throw new BenchArgumentError('--limit and --quick choose workloads of the matrix scenario only');
  // The matrix is generated from the seed; --only, --limit and --quick choose among its workloads.
  const chosen =
    scenarioName === 'matrix'
      ? matrixScenario(
          options.seed,
          { only: options.only, limit: options.limit, quick: options.quick },
          matrixScale !== undefined ? { scale: matrixScale } : {},
        )
      : SCENARIOS[scenarioName];
  if (!chosen)
    throw new BenchArgumentError(
      `unknown scenario ${JSON.stringify(scenarioName)}: one of ${SCENARIO_NAMES.join(', ')}`,
    );
  let runs = chosen.runs.map((run) =>
    overrides.reduce((current, [apply, value]) => apply(current, value), run),
  );
  if (options.only && runs.length === 0)
    throw new BenchArgumentError(`--only ${JSON.stringify(options.only)} matches no workload of the matrix`);
  if (options.only && scenarioName !== 'matrix') {
    runs = runs.filter((run) => run.variant.toLowerCase().includes(options.only!.toLowerCase()));
    if (runs.length === 0)
      throw new BenchArgumentError(
        `--only ${JSON.stringify(options.only)} matches no variant of ${chosen.name}`,
      );
  }
  return { ...options, scenario: { ...chosen, runs } };
}

function checkUrl(flag: string, value: string): string {
  try {
    const url = new URL(value);
    if (url.protocol !== 'http:') throw new Error('not http');
    return url.origin;
  } catch {
    throw new BenchArgumentError(`${flag}=${JSON.stringify(value)} — expected an http:// URL`);
  }
}

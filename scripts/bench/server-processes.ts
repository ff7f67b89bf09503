import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { troupeNodeFlags } from '../troupe-node-flags';

/**
 * The two servers a benchmark measures, each in its own child process so that neither shares an
 * event loop with the load generator: sim-llm (the quota-enforcing provider) and Troupe (pointed at
 * it with LLM_PROVIDER=openai). Both are started on port 0 and report their URL on stdout.
 */

export const REPO_ROOT = path.resolve(__dirname, '..', '..');

export interface SimQuota {
  rpm: number;
  concurrency: number;
  latencyMs: number;
  tps: number;
}

export interface ChildServer {
  url: string;
  pid: number;
  /** Where its stdout and stderr went. */
  logFile: string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
  stop(graceMs?: number): Promise<void>;
  /** Resolves with the exit code when the process exits (for spotting crashes mid-run). */
  exited: Promise<number | null>;
}

/** How Troupe is run: compiled (`npm run build` first) or straight from TypeScript through tsx. */
export type TroupeRuntime = 'dist' | 'tsx';

/** The environment of a Troupe pointed at a sim-llm server, quiet, on a free loopback port. */
export function troupeEnvAgainstSim(simUrl: string, dataDir: string): Record<string, string> {
  return {
    PORT: '0',
    HOST: '127.0.0.1',
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    DATA_DIR: dataDir,
    LLM_PROVIDER: 'openai',
    LLM_BASE_URL: `${simUrl}/v1`,
    LLM_MODEL: 'troupe-sim',
    LLM_API_KEY: 'bench',
  };
}

export async function startSimServer(quota: SimQuota, logFile: string): Promise<ChildServer> {
  const args = [
    '--import',
    'tsx',
    path.join(REPO_ROOT, 'scripts', 'sim-llm.ts'),
    '--port',
    '0',
    '--rpm',
    String(Math.round(quota.rpm)),
    '--concurrency',
    String(Math.round(quota.concurrency)),
    '--latency-ms',
    String(Math.round(quota.latencyMs)),
    '--tps',
    String(Math.round(quota.tps)),
  ];
  return startChild('sim-llm', args, { ...process.env }, /sim-llm listening on (\S+)/, logFile);
}

export async function startTroupeServer(
  env: Record<string, string>,
  runtime: TroupeRuntime,
  logFile: string,
): Promise<ChildServer> {
  const entry =
    runtime === 'dist'
      ? path.join(REPO_ROOT, 'dist', 'scripts', 'bench', 'troupe-process.js')
      : path.join(REPO_ROOT, 'scripts', 'bench', 'troupe-process.ts');
  if (runtime === 'dist' && !fs.existsSync(entry)) {
    throw new Error(
      `${path.relative(REPO_ROOT, entry)} does not exist: run \`npm run build\` first, or use --runtime tsx`,
    );
  }
  // BENCH_TROUPE_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/p"): flags for Troupe's node only.
  // NODE_OPTIONS refuses --cpu-prof and --heap-prof, and would profile sim-llm and the drivers too.
  // Troupe's own flags (package.json's start script) first: the bench measures what `npm start` runs.
  const nodeArgs = [
    ...troupeNodeFlags(REPO_ROOT),
    ...(process.env.BENCH_TROUPE_NODE_ARGS ?? '').split(' ').filter(Boolean),
  ];
  const args = runtime === 'dist' ? [...nodeArgs, entry] : [...nodeArgs, '--import', 'tsx', entry];
  return startChild('Troupe', args, { ...process.env, ...env }, /Troupe is ready at (\S+)/, logFile);
}

/** Starts `node args…` and resolves once its output matches `ready` (whose first group is its URL). */
export function startChild(
  name: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: RegExp,
  logFile: string,
): Promise<ChildServer> {
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const log = fs.createWriteStream(logFile);
  // node itself, not npm or npx: the pid we sample is then the server's own.
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.stderr!.pipe(log, { end: false });
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(
      () => fail(new Error(`${name} did not report ready within 60 s; see ${logFile}`)),
      60_000,
    );
    const onData = (chunk: Buffer) => {
      log.write(chunk);
      seen += chunk.toString('utf8');
      const match = ready.exec(seen);
      if (!match) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.stdout!.pipe(log, { end: false });
      resolve({
        url: match[1],
        pid: child.pid!,
        logFile,
        stop: (graceMs) => stopChild(child, exited, graceMs),
        exited,
      });
    };
    const onEarlyExit = (code: number | null) =>
      fail(new Error(`${name} exited with code ${code} before it was ready: ${tail(logFile, seen)}`));
    function fail(error: Error) {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(error);
    }
    child.stdout!.on('data', onData);
    void exited.then((code) => {
      if (!seen.match(ready)) onEarlyExit(code);
    });
  });
}

async function stopChild(
  child: ChildProcess,
  exited: Promise<number | null>,
  graceMs = 10_000,
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

function tail(logFile: string, stdout: string): string {
  let text = stdout;
  try {
    text += fs.readFileSync(logFile, 'utf8');
  } catch {
    // Nothing written yet: stdout alone says what there is to say.
  }
  return text.trim().split('\n').slice(-5).join(' | ');
}

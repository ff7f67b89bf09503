import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { EndpointStatus } from '../../api/llm/routing/endpoint-status';
import { delay, resultsDirectory } from './bench-pair';
import { runChat, type ChatRecord } from './chat-client';
import { composeMessage, pickKind } from './chat-messages';
import { getJson, postJson, type SimStats } from './resource-sampler';
import {
  startSimServer,
  startTroupeServer,
  type ChildServer,
  type SimQuota,
  type TroupeRuntime,
} from './server-processes';
import { seededRandom, summarize } from './statistics';

/**
 * `npm run bench -- --scenario endpoints`: two simulated endpoints with different quotas and speeds
 * (each a sim-llm enforcing its quota with 429s), Troupe routing the agents over them in fallback
 * order, open arrivals below their combined capacity. Mid-run `pro` fails: a burst of 5xx, then
 * (after a short recovery) its quota used up — every call refused with 429 and a long Retry-After.
 * Prints each endpoint's 429s caused by its quota (the goal: 0), the goodput against the sum of the
 * endpoints' bounds mu_i = min(R_i/60, C_i/L_i), and the chats completed through fallback.
 */

export interface EndpointsScenarioOptions {
  durationS: number;
  /** New chats per second. */
  rate: number;
  seed: number;
  runtime: TroupeRuntime;
  outDir: string;
}

/** A fast, cheap model and a slower, stronger one, each with its own quota. */
const LITE: SimQuota = { rpm: 240, concurrency: 6, latencyMs: 150, tps: 200 };
const PRO: SimQuota = { rpm: 120, concurrency: 4, latencyMs: 400, tps: 100 };

/** The issue's routes; the Critic and the Reporter also fall back to the other endpoint. */
const ROUTES = `routes:
  host: [lite, pro]
  planner: [pro, lite]
  critic: [lite, pro]
  reporter: [pro, lite]
  default: [pro, lite]
`;

/** When pro misbehaves, as fractions of the run. */
const BURST = { from: 0.25, to: 0.45 };
const EXHAUSTED_FROM = 0.6;
/** Retry-After of the used-up quota's 429s, s: longer than any call's time left. */
const EXHAUSTED_RETRY_AFTER_S = 600;

export async function runEndpointsScenario(options: EndpointsScenarioOptions): Promise<void> {
  const directory = resultsDirectory(options.outDir, 'endpoints');
  fs.mkdirSync(directory, { recursive: true });
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-bench-'));
  const lite = await startSimServer(LITE, path.join(directory, 'lite-sim-llm.log'));
  const pro = await startSimServer(PRO, path.join(directory, 'pro-sim-llm.log'));
  const file = path.join(dataDir, 'endpoints.yml');
  fs.writeFileSync(
    file,
    `endpoints:\n${endpointEntry('lite', lite, LITE)}${endpointEntry('pro', pro, PRO)}${ROUTES}`,
  );
  let troupe: ChildServer | undefined;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2000 });
  try {
    troupe = await startTroupeServer(
      {
        PORT: '0',
        HOST: '127.0.0.1',
        NODE_ENV: 'production',
        LOG_LEVEL: 'warn',
        DATA_DIR: dataDir,
        LLM_ENDPOINTS_FILE: file,
        LLM_CACHE: 'off',
      },
      options.runtime,
      path.join(directory, 'troupe.log'),
    );
    const records = await drive(troupe.url, agent, pro, options);
    await delay(500);
    const status = await getJson<{ queue: { endpoints: EndpointStatus[] } }>(
      `${troupe.url}/api/queue/status`,
    );
    const sims = {
      lite: await getJson<SimStats>(`${lite.url}/sim/stats`),
      pro: await getJson<SimStats>(`${pro.url}/sim/stats`),
    };
    const report = summarise(records, status?.queue.endpoints ?? [], sims, options);
    fs.writeFileSync(path.join(directory, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
    const table = formatReport(report);
    fs.writeFileSync(path.join(directory, 'table.txt'), `${table}\n`);
    process.stdout.write(`\n${table}\n\nresults: ${directory}\n`);
  } finally {
    agent.destroy();
    await troupe?.stop();
    await lite.stop();
    await pro.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

function endpointEntry(name: string, sim: ChildServer, quota: SimQuota): string {
  // Troupe's limits at the endpoint's quota: the scheduler, not the provider, holds calls back.
  return [
    `  - name: ${name}`,
    `    baseUrl: ${sim.url}/v1`,
    '    apiKey: bench',
    `    model: ${name}-model`,
    `    maxConcurrent: ${quota.concurrency}`,
    `    maxRpm: ${quota.rpm}`,
    '    maxTpm: 0',
    '',
  ].join('\n');
}

/** Open arrivals at `rate` chats/s for the run; pro's faults switched on and off on schedule. */
async function drive(
  url: string,
  agent: http.Agent,
  pro: ChildServer,
  options: EndpointsScenarioOptions,
): Promise<ChatRecord[]> {
  const random = seededRandom(options.seed);
  const target = { url: new URL(url), agent };
  const durationMs = options.durationS * 1000;
  const startedAt = Date.now();
  const schedule = [
    { at: BURST.from, faults: { failPercent: 100 }, note: 'pro: 5xx burst' },
    { at: BURST.to, faults: { failPercent: 0 }, note: 'pro: healthy again' },
    {
      at: EXHAUSTED_FROM,
      faults: { storm429Percent: 100, retryAfterSeconds: EXHAUSTED_RETRY_AFTER_S },
      note: `pro: quota used up (429, Retry-After ${EXHAUSTED_RETRY_AFTER_S} s)`,
    },
  ];
  const timers = schedule.map((step) =>
    setTimeout(() => {
      process.stdout.write(`  t=${Math.round((Date.now() - startedAt) / 1000)} s  ${step.note}\n`);
      void postJson(`${pro.url}/sim/faults`, step.faults);
    }, step.at * durationMs),
  );
  const chats: Array<Promise<ChatRecord>> = [];
  let user = 0;
  while (Date.now() - startedAt < durationMs) {
    const kind = pickKind(random());
    chats.push(
      runChat(
        target,
        { user, userId: `user-${user}`, kind, message: composeMessage(kind, random()) },
        { timeoutMs: 120_000 },
      ),
    );
    user++;
    // Poisson arrivals.
    await delay((-Math.log(1 - random()) / options.rate) * 1000);
  }
  const records = await Promise.all(chats);
  timers.forEach((timer) => clearTimeout(timer));
  return records;
}

interface EndpointFigures {
  name: string;
  quota: SimQuota;
  requests: number;
  accepted: number;
  /** 429s the endpoint's own quota caused (Troupe exceeded it): the goal is 0. */
  quota429: number;
  injected429: number;
  injected5xx: number;
  maxInFlight: number;
  callMs: number | null;
  boundCallsPerS: number;
  left: number;
  skipped: number;
  servedAsFallback: number;
}

function summarise(
  records: ChatRecord[],
  endpoints: EndpointStatus[],
  sims: Record<'lite' | 'pro', SimStats | null | undefined>,
  options: EndpointsScenarioOptions,
) {
  const quotas = { lite: LITE, pro: PRO };
  const figures: EndpointFigures[] = (['lite', 'pro'] as const).map((name) => {
    const sim = sims[name];
    const status = endpoints.find((endpoint) => endpoint.name === name);
    const quota = quotas[name];
    const callMs = status?.latencyEstimateMs ?? null;
    const injected429 = sim?.faults?.injected429 ?? 0;
    return {
      name,
      quota,
      requests: sim?.requests ?? 0,
      accepted: sim?.accepted ?? 0,
      quota429: (sim?.rejected429 ?? 0) - injected429,
      injected429,
      injected5xx: sim?.faults?.injected5xx ?? 0,
      maxInFlight: sim?.maxInFlight ?? 0,
      callMs,
      boundCallsPerS: Math.min(quota.rpm / 60, callMs ? quota.concurrency / (callMs / 1000) : Infinity),
      left: status?.fallbacks.left ?? 0,
      skipped: status?.fallbacks.skipped ?? 0,
      servedAsFallback: status?.fallbacks.servedAsFallback ?? 0,
    };
  });
  const completed = records.filter((record) => record.outcome === 'completed');
  const lastEnd = Math.max(...records.map((record) => record.endedAt));
  const firstSent = Math.min(...records.map((record) => record.sentAt));
  const wallS = (lastEnd - firstSent) / 1000;
  const goodCalls = completed.reduce((sum, record) => sum + record.calls, 0);
  const codes: Record<string, number> = {};
  for (const record of records) {
    if (record.outcome !== 'completed')
      codes[record.code ?? record.outcome] = (codes[record.code ?? record.outcome] ?? 0) + 1;
  }
  const times = summarize(completed.map((record) => record.completionMs ?? 0));
  return {
    scenario: 'endpoints',
    seed: options.seed,
    durationS: options.durationS,
    rate: options.rate,
    routes: ROUTES.trim(),
    endpoints: figures,
    chats: {
      offered: records.length,
      completed: completed.length,
      notCompleted: codes,
      p50Ms: Math.round(times.p50 ?? 0),
      p95Ms: Math.round(times.p95 ?? 0),
    },
    goodputCallsPerS: goodCalls / wallS,
    sumOfBoundsCallsPerS: figures.reduce((sum, endpoint) => sum + endpoint.boundCallsPerS, 0),
    callsServedAsFallback: figures.reduce((sum, endpoint) => sum + endpoint.servedAsFallback, 0),
    wallS,
  };
}

function formatReport(report: ReturnType<typeof summarise>): string {
  const lines = [
    `endpoints: ${report.durationS} s of open arrivals at ${report.rate} chats/s; pro fails with 5xx from ${BURST.from * report.durationS} s to ${BURST.to * report.durationS} s, its quota is used up from ${EXHAUSTED_FROM * report.durationS} s`,
    '',
    'endpoint  quota (RPM / conc / call ms)  requests  quota 429s  injected 5xx / 429  max in flight  bound calls/s  left / skipped / served as fallback',
  ];
  for (const endpoint of report.endpoints) {
    lines.push(
      [
        endpoint.name.padEnd(8),
        `${endpoint.quota.rpm} / ${endpoint.quota.concurrency} / ${endpoint.callMs ?? 'n/a'}`.padEnd(28),
        String(endpoint.requests).padStart(8),
        String(endpoint.quota429).padStart(11),
        `${endpoint.injected5xx} / ${endpoint.injected429}`.padStart(19),
        `${endpoint.maxInFlight} (≤ ${endpoint.quota.concurrency})`.padStart(14),
        endpoint.boundCallsPerS.toFixed(2).padStart(14),
        `${endpoint.left} / ${endpoint.skipped} / ${endpoint.servedAsFallback}`.padStart(20),
      ].join('  '),
    );
  }
  const notCompleted = Object.entries(report.chats.notCompleted)
    .map(([code, count]) => `${code} ${count}`)
    .join(', ');
  lines.push(
    '',
    `chats: ${report.chats.completed} of ${report.chats.offered} completed (p50 ${report.chats.p50Ms} ms, p95 ${report.chats.p95Ms} ms)${notCompleted ? `; not completed: ${notCompleted}` : ''}`,
    `goodput: ${report.goodputCallsPerS.toFixed(2)} calls/s of completed chats, against the sum of the bounds ${report.sumOfBoundsCallsPerS.toFixed(2)} calls/s`,
    `calls served through fallback: ${report.callsServedAsFallback}`,
  );
  return lines.join('\n');
}

import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { startBenchPair, resultsDirectory, type BenchPair } from './bench-pair';
import { composeMessage } from './chat-messages';
import { now, runChat, type ChatRecord } from './chat-client';
import { runCallers, type CallRecord, type CallerSpec, type GatewayTarget } from './gateway-clients';
import { startPortkey } from './portkey-process';
import type { ChildServer, SimQuota, TroupeRuntime } from './server-processes';
import { percentile, seededRandom } from './statistics';

/**
 * `npm run bench -- --scenario gateway [--quick] [--duration-s S] [--seed N]`: one quota-enforcing
 * provider (sim-llm), multi-agent chats through Troupe, and at the same time a team's other
 * services — two interactive callers and a batch flood at 3x the quota from three batch callers —
 * calling the same provider:
 *
 *   chats-alone  the chats only (the reference for "chats unaffected");
 *   troupe       the services call Troupe's /v1 with their keys (interactive / batch classes);
 *   portkey      the services call the provider through Portkey (retries on 429, no quota of its
 *                own), beside Troupe, which holds the whole quota for the chats.
 *
 * Prints provider 429s, client errors, goodput against the quota bound, p95 per caller class, and
 * fairness between callers of a class (Jain's index of their answered requests).
 */

export interface GatewayScenarioOptions {
  quick: boolean;
  durationS?: number;
  seed: number;
  runtime: TroupeRuntime;
  outDir: string;
}

type Arm = 'chats-alone' | 'troupe' | 'portkey';

/** 10 calls/s by RPM; calls of ~0.5–1 s leave concurrency 20 far from binding. */
const QUOTA: SimQuota = { rpm: 600, concurrency: 20, latencyMs: 300, tps: 200 };
const BOUND_CALLS_PER_S = QUOTA.rpm / 60;
const CHATS_PER_S = 0.4;
const CALLERS: CallerSpec[] = [
  { name: 'svc-a', callerClass: 'interactive', rate: 0.5 },
  { name: 'svc-b', callerClass: 'interactive', rate: 0.5 },
  { name: 'batch-1', callerClass: 'batch', rate: BOUND_CALLS_PER_S },
  { name: 'batch-2', callerClass: 'batch', rate: BOUND_CALLS_PER_S },
  { name: 'batch-3', callerClass: 'batch', rate: BOUND_CALLS_PER_S },
];
const MODEL = 'troupe-sim';
const CLIENT_TIMEOUT_MS = 90_000;

interface ClassFigures {
  sent: number;
  ok: number;
  refused429: number;
  errors: number;
  p50Ms?: number;
  p95Ms?: number;
  /** Jain's index of answered requests per caller (1 = equal shares). */
  fairness?: number;
}

interface ArmResult {
  arm: Arm;
  wallS: number;
  provider: { requests: number; rejected429: number; completed: number };
  goodputPerS: number;
  chats: {
    sent: number;
    completed: number;
    refused: number;
    failed: number;
    p50Ms?: number;
    p95Ms?: number;
    /** Why the others did not complete: error code → chats. */
    codes: Record<string, number>;
    /** A completed chat's time in the LLM queue (its calls' waits summed), p50 and p95, ms. */
    queueWaitP50Ms?: number;
    queueWaitP95Ms?: number;
  };
  classes: Partial<Record<CallerSpec['callerClass'], ClassFigures>>;
}

export async function runGatewayScenario(options: GatewayScenarioOptions): Promise<void> {
  const durationS = options.durationS ?? (options.quick ? 20 : 60);
  const directory = resultsDirectory(options.outDir, 'gateway');
  fs.mkdirSync(directory, { recursive: true });
  const keysFile = path.join(directory, 'keys.yaml');
  fs.writeFileSync(
    keysFile,
    [
      'keys:',
      ...CALLERS.map(
        (caller) => `  - { key: ${keyOf(caller)}, caller: ${caller.name}, class: ${caller.callerClass} }`,
      ),
      // The chat users' keys: with keys configured, /api/chat takes the user from the key too.
      ...Array.from(
        { length: Math.ceil(durationS * CHATS_PER_S) + 1 },
        (_, user) => `  - { key: ${chatKey(user)}, caller: chat-user-${user} }`,
      ),
    ].join('\n'),
  );
  process.stdout.write(
    `gateway: quota rpm ${QUOTA.rpm} (bound ${BOUND_CALLS_PER_S} calls/s), concurrency ${QUOTA.concurrency}; ` +
      `${durationS} s of chats at ${CHATS_PER_S}/s, 2 interactive callers at 0.5/s, batch 3 x ${BOUND_CALLS_PER_S}/s (3x the quota)\n`,
  );
  const results: ArmResult[] = [];
  for (const arm of ['chats-alone', 'troupe', 'portkey'] as const) {
    results.push(await runArm(arm, { ...options, durationS, directory, keysFile }));
    process.stdout.write(`${formatArm(results.at(-1)!)}\n`);
  }
  const table = formatTable(results);
  fs.writeFileSync(
    path.join(directory, 'report.json'),
    JSON.stringify({ quota: QUOTA, durationS, results }, null, 2),
  );
  fs.writeFileSync(path.join(directory, 'table.txt'), `${table}\n`);
  process.stdout.write(`\n${table}\n\nresults: ${directory}\n`);
}

function keyOf(caller: CallerSpec): string {
  return `sk-bench-${caller.name}`;
}

function chatKey(user: number): string {
  return `sk-bench-chat-user-${user}`;
}

async function runArm(
  arm: Arm,
  options: GatewayScenarioOptions & { durationS: number; directory: string; keysFile: string },
): Promise<ArmResult> {
  const pair: BenchPair = await startBenchPair(
    QUOTA,
    { LLM_CACHE: 'off', API_KEYS_FILE: options.keysFile },
    { runtime: options.runtime, directory: options.directory, label: arm },
  );
  let portkey: ChildServer | undefined;
  try {
    if (arm === 'portkey') portkey = await startPortkey(path.join(options.directory, 'portkey.log'));
    const durationMs = options.durationS * 1000;
    const startedAt = now();
    const target = callerTarget(arm, pair, portkey);
    const [chats, calls] = await Promise.all([
      runChats(pair, durationMs, options.seed),
      target ? runCallers(target, CALLERS, durationMs, CLIENT_TIMEOUT_MS, options.seed) : Promise.resolve([]),
    ]);
    const wallS = (now() - startedAt) / 1000;
    const stats = await pair.simStats();
    return {
      arm,
      wallS: round(wallS, 1),
      provider: { requests: stats.requests, rejected429: stats.rejected429, completed: stats.completed },
      goodputPerS: round(stats.completed / wallS, 2),
      chats: chatFigures(chats),
      classes: {
        ...(calls.length > 0 ? { interactive: classFigures(calls, 'interactive') } : {}),
        ...(calls.length > 0 ? { batch: classFigures(calls, 'batch') } : {}),
      },
    };
  } finally {
    await portkey?.stop();
    await pair.stop();
  }
}

function callerTarget(
  arm: Arm,
  pair: BenchPair,
  portkey: ChildServer | undefined,
): GatewayTarget | undefined {
  if (arm === 'troupe') {
    return {
      url: new URL(pair.troupeUrl),
      model: MODEL,
      headers: (caller) => ({ authorization: `Bearer ${keyOf(caller)}` }),
    };
  }
  if (arm === 'portkey') {
    // As a team would run it: provider openai at the custom host, retrying 429s and 5xx.
    const config = JSON.stringify({
      provider: 'openai',
      custom_host: `${pair.simUrl}/v1`,
      api_key: 'bench',
      retry: { attempts: 3, on_status_codes: [429, 500, 502, 503, 504] },
    });
    return { url: new URL(portkey!.url), model: MODEL, headers: () => ({ 'x-portkey-config': config }) };
  }
  return undefined;
}

async function runChats(pair: BenchPair, durationMs: number, seed: number): Promise<ChatRecord[]> {
  const random = seededRandom(seed);
  const target = {
    url: new URL(pair.troupeUrl),
    agent: new http.Agent({ keepAlive: true, maxSockets: 2000 }),
    apiKey: (spec: { user: number }) => chatKey(spec.user),
  };
  const startedAt = now();
  const chats: Array<Promise<ChatRecord>> = [];
  const gapMs = 1000 / CHATS_PER_S;
  for (let user = 0, at = 0; at < durationMs; user++, at += gapMs) {
    const wait = startedAt + at - now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    // Long requests only: 4 calls each (Host, Planner, Critic approves, Reporter).
    const message = composeMessage('long', random());
    chats.push(
      runChat(
        target,
        { user, userId: `chat-user-${user}`, kind: 'long', message },
        { timeoutMs: CLIENT_TIMEOUT_MS },
      ),
    );
  }
  const records = await Promise.all(chats);
  target.agent.destroy();
  return records;
}

function chatFigures(chats: ChatRecord[]): ArmResult['chats'] {
  const times = chats.filter((chat) => chat.outcome === 'completed').map((chat) => chat.completionMs ?? 0);
  const codes: Record<string, number> = {};
  for (const chat of chats) {
    if (chat.outcome !== 'completed')
      codes[chat.code ?? chat.outcome] = (codes[chat.code ?? chat.outcome] ?? 0) + 1;
  }
  const waits = chats.filter((chat) => chat.outcome === 'completed').map((chat) => chat.llmWaitMs);
  return {
    codes,
    queueWaitP50Ms: roundOrUndefined(percentile(waits, 50)),
    queueWaitP95Ms: roundOrUndefined(percentile(waits, 95)),
    sent: chats.length,
    completed: times.length,
    refused: chats.filter((chat) => chat.outcome === 'refused').length,
    failed: chats.filter((chat) => chat.outcome !== 'completed' && chat.outcome !== 'refused').length,
    p50Ms: roundOrUndefined(percentile(times, 50)),
    p95Ms: roundOrUndefined(percentile(times, 95)),
  };
}

function classFigures(calls: CallRecord[], callerClass: CallerSpec['callerClass']): ClassFigures {
  const mine = calls.filter((call) => call.callerClass === callerClass);
  const ok = mine.filter((call) => call.status === 200);
  const latencies = ok.map((call) => call.latencyMs);
  const perCaller = CALLERS.filter((caller) => caller.callerClass === callerClass).map(
    (caller) => ok.filter((call) => call.caller === caller.name).length,
  );
  return {
    sent: mine.length,
    ok: ok.length,
    refused429: mine.filter((call) => call.status === 429).length,
    errors: mine.filter((call) => call.status !== 200 && call.status !== 429).length,
    p50Ms: roundOrUndefined(percentile(latencies, 50)),
    p95Ms: roundOrUndefined(percentile(latencies, 95)),
    fairness: jain(perCaller),
  };
}

/** Jain's fairness index: (Σx)² / (n·Σx²); 1 when every caller got the same. */
export function jain(values: number[]): number | undefined {
  const sum = values.reduce((total, value) => total + value, 0);
  const squares = values.reduce((total, value) => total + value * value, 0);
  return squares === 0 ? undefined : round((sum * sum) / (values.length * squares), 3);
}

function formatArm(result: ArmResult): string {
  const { chats, provider } = result;
  return (
    `  ${result.arm}: provider 429s ${provider.rejected429}, goodput ${result.goodputPerS}/s of ${BOUND_CALLS_PER_S}, ` +
    `chats ${chats.completed}/${chats.sent} p95 ${seconds(chats.p95Ms)}`
  );
}

function formatTable(results: ArmResult[]): string {
  const rows: string[][] = [
    [
      'arm',
      'provider 429s',
      'goodput / bound',
      'chats done',
      'chat p50',
      'chat p95',
      'chat queue wait p50 / p95',
      'interactive ok / sent (429, err)',
      'interactive p95',
      'batch ok / sent (429, err)',
      'batch p95',
      'fairness i / b',
    ],
  ];
  for (const result of results) {
    const { interactive, batch } = result.classes;
    rows.push([
      result.arm,
      String(result.provider.rejected429),
      `${result.goodputPerS} / ${BOUND_CALLS_PER_S} (${Math.round((result.goodputPerS / BOUND_CALLS_PER_S) * 100)} %)`,
      `${result.chats.completed} / ${result.chats.sent}`,
      seconds(result.chats.p50Ms),
      seconds(result.chats.p95Ms),
      `${seconds(result.chats.queueWaitP50Ms)} / ${seconds(result.chats.queueWaitP95Ms)}`,
      interactive
        ? `${interactive.ok} / ${interactive.sent} (${interactive.refused429}, ${interactive.errors})`
        : '—',
      seconds(interactive?.p95Ms),
      batch ? `${batch.ok} / ${batch.sent} (${batch.refused429}, ${batch.errors})` : '—',
      seconds(batch?.p95Ms),
      interactive ? `${interactive.fairness ?? '—'} / ${batch?.fairness ?? '—'}` : '—',
    ]);
  }
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  return rows
    .map((row) => `| ${row.map((cell, column) => cell.padEnd(widths[column])).join(' | ')} |`)
    .join('\n');
}

function seconds(ms: number | undefined): string {
  return ms === undefined ? '—' : `${(ms / 1000).toFixed(1)} s`;
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

function roundOrUndefined(value: number | undefined): number | undefined {
  return value === undefined ? undefined : Math.round(value);
}

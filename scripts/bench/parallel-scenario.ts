import fs from 'node:fs';
import path from 'node:path';
import { startBenchPair, delay, resultsDirectory, type BenchPair } from './bench-pair';
import { runChat, type ChatRecord } from './chat-client';
import { composeMessage, pickKind, type MessageKind } from './chat-messages';
import type { SimQuota, TroupeRuntime } from './server-processes';
import { seededRandom, summarize } from './statistics';

/**
 * `npm run bench -- --scenario parallel`, two parts (LLM_CACHE=off throughout, so every chat pays
 * its calls):
 * - idle: one user, chats one after another from the benchmark's message mix, on the brief's quota,
 *   with AGENT_PARALLEL=off and on: completion time (the Reporter drafting while the Critic reviews).
 * - overload: open arrivals at twice what a small quota serves, every message a short one (the
 *   Critic asks for one revision: 6 calls in sequence, 7 when a draft is withdrawn), with off, auto
 *   and on: provider calls per completed chat, and drafts started while the queue was full.
 */

export interface ParallelScenarioOptions {
  idleChats: number;
  overloadS: number;
  /** Run only one part: `idle` or `overload` (default both). */
  part?: 'idle' | 'overload';
  seed: number;
  runtime: TroupeRuntime;
  outDir: string;
}

/** The brief's quota: C = 50, R = 500/min, ~2 s calls. At idle nothing waits for a slot. */
const IDLE_QUOTA: SimQuota = { rpm: 500, concurrency: 50, latencyMs: 500, tps: 50 };
/** A small quota, so that twice its capacity is a handful of chats a second: mu = min(120/60, 4/2 s) = 2 calls/s. */
const OVERLOAD_QUOTA: SimQuota = { rpm: 120, concurrency: 4, latencyMs: 500, tps: 50 };
const SHORT_CALLS = 6;

interface IdleResult {
  mode: string;
  completed: number;
  failed: number;
  providerCalls: number;
  callsPerChat: number;
  meanMs: number;
  p50Ms: number;
  p95Ms: number;
  drafts: Record<string, number>;
}

interface OverloadResult {
  mode: string;
  offered: number;
  completed: number;
  refused: number;
  failed: number;
  providerCalls: number;
  callsPerCompletedChat: number;
  /** Drafts started by the time arrivals stopped (the overload), and in all (the drain after it included). */
  draftsWhileOverloaded: number;
  drafts: Record<string, number>;
}

export async function runParallelScenario(options: ParallelScenarioOptions): Promise<void> {
  const directory = resultsDirectory(options.outDir, 'parallel');
  const random = seededRandom(options.seed);
  const idleMessages = Array.from({ length: options.idleChats }, () => {
    const kind = pickKind(random());
    return { kind, text: composeMessage(kind, random()) };
  });

  const idle: IdleResult[] = [];
  for (const mode of options.part === 'overload' ? [] : ['off', 'on']) {
    process.stdout.write(
      `parallel (idle): AGENT_PARALLEL=${mode}, ${options.idleChats} chats one after another…\n`,
    );
    const pair = await startBenchPair(
      IDLE_QUOTA,
      { AGENT_PARALLEL: mode, LLM_CACHE: 'off' },
      {
        runtime: options.runtime,
        directory,
        label: `idle-${mode}`,
      },
    );
    try {
      idle.push(await runIdle(pair, mode, idleMessages));
    } finally {
      await pair.stop();
    }
  }

  const overload: OverloadResult[] = [];
  for (const mode of options.part === 'idle' ? [] : ['off', 'auto', 'on']) {
    process.stdout.write(
      `parallel (overload): AGENT_PARALLEL=${mode}, ${options.overloadS} s at 2x capacity…\n`,
    );
    const pair = await startBenchPair(
      OVERLOAD_QUOTA,
      { AGENT_PARALLEL: mode, LLM_CACHE: 'off' },
      {
        runtime: options.runtime,
        directory,
        label: `overload-${mode}`,
      },
    );
    try {
      overload.push(await runOverload(pair, mode, options, seededRandom(options.seed + 1)));
    } finally {
      await pair.stop();
    }
  }

  const report = {
    scenario: 'parallel',
    seed: options.seed,
    idleQuota: IDLE_QUOTA,
    overloadQuota: OVERLOAD_QUOTA,
    idle,
    overload,
  };
  fs.writeFileSync(path.join(directory, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  const table = formatTables(idle, overload);
  fs.writeFileSync(path.join(directory, 'table.txt'), `${table}\n`);
  process.stdout.write(`\n${table}\n\nresults: ${directory}\n`);
}

async function runIdle(
  pair: BenchPair,
  mode: string,
  messages: Array<{ kind: MessageKind; text: string }>,
): Promise<IdleResult> {
  const target = { url: new URL(pair.troupeUrl), agent: pair.agent };
  await runChat(
    target,
    {
      user: -1,
      userId: 'warm-up',
      kind: 'long',
      message: 'Warm up the server before we measure anything at all',
    },
    { timeoutMs: 120_000 },
  );
  await pair.resetSim();
  const before = await speculationCounts(pair);
  const records: ChatRecord[] = [];
  for (const [user, message] of messages.entries()) {
    records.push(
      await runChat(
        target,
        { user, userId: 'idle-user', kind: message.kind, message: message.text },
        { timeoutMs: 120_000 },
      ),
    );
  }
  await delay(500);
  const stats = await pair.simStats();
  const completed = records.filter((record) => record.outcome === 'completed');
  const times = summarize(completed.map((record) => record.completionMs ?? 0));
  return {
    mode,
    completed: completed.length,
    failed: records.length - completed.length,
    providerCalls: stats.requests,
    callsPerChat: stats.requests / Math.max(1, completed.length),
    meanMs: Math.round(times.mean ?? 0),
    p50Ms: Math.round(times.p50 ?? 0),
    p95Ms: Math.round(times.p95 ?? 0),
    drafts: difference(await speculationCounts(pair), before),
  };
}

async function runOverload(
  pair: BenchPair,
  mode: string,
  options: ParallelScenarioOptions,
  random: () => number,
): Promise<OverloadResult> {
  const target = { url: new URL(pair.troupeUrl), agent: pair.agent };
  await runChat(
    target,
    {
      user: -1,
      userId: 'warm-up',
      kind: 'long',
      message: 'Warm up the server before we measure anything at all',
    },
    { timeoutMs: 120_000 },
  );
  await pair.resetSim();
  const before = await speculationCounts(pair);
  // Capacity: 2 calls/s ÷ 6 calls = 1/3 chat/s; twice that arrives, as a Poisson stream.
  const ratePerS = (2 * 2) / SHORT_CALLS;
  const chats: Array<Promise<ChatRecord>> = [];
  const endAt = Date.now() + options.overloadS * 1000;
  let user = 0;
  const arrive = () => {
    const message = composeMessage('short', random());
    chats.push(
      runChat(target, { user, userId: `user-${user}`, kind: 'short', message }, { timeoutMs: 180_000 }),
    );
    user++;
  };
  // The first few arrive together, as the overload begins: otherwise the very first chat finds the
  // provider idle, and auto rightly drafts for it.
  for (let index = 0; index < OVERLOAD_QUOTA.concurrency; index++) arrive();
  while (Date.now() < endAt) {
    await delay((-Math.log(1 - random()) / ratePerS) * 1000);
    arrive();
  }
  const draftsAtArrivalEnd = difference(await speculationCounts(pair), before);
  const records = await Promise.all(chats);
  await delay(1000);
  const stats = await pair.simStats();
  const completed = records.filter((record) => record.outcome === 'completed').length;
  return {
    mode,
    offered: records.length,
    completed,
    refused: records.filter((record) => record.outcome === 'refused').length,
    failed: records.filter((record) => record.outcome !== 'completed' && record.outcome !== 'refused').length,
    providerCalls: stats.requests,
    callsPerCompletedChat: stats.requests / Math.max(1, completed),
    draftsWhileOverloaded: draftsAtArrivalEnd.started ?? 0,
    drafts: difference(await speculationCounts(pair), before),
  };
}

/** troupe_agent_speculative_drafts_total by event, read from /metrics. */
async function speculationCounts(pair: BenchPair): Promise<Record<string, number>> {
  const response = await fetch(`${pair.troupeUrl}/metrics`);
  const text = await response.text();
  const counts: Record<string, number> = {};
  for (const match of text.matchAll(/^troupe_agent_speculative_drafts_total\{event="(\w+)"\} (\d+)/gm))
    counts[match[1]] = Number(match[2]);
  return counts;
}

function difference(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const result: Record<string, number> = {};
  for (const key of ['started', 'used', 'withdrawn', 'failed'])
    result[key] = (after[key] ?? 0) - (before[key] ?? 0);
  return result;
}

function formatTables(idle: IdleResult[], overload: OverloadResult[]): string {
  const drafts = (counts: Record<string, number>) => `${counts.started}/${counts.used}/${counts.withdrawn}`;
  const idleLines = [
    `parallel, idle (one user, chats one after another; quota ${IDLE_QUOTA.rpm} rpm, ${IDLE_QUOTA.concurrency} concurrent, ` +
      `${IDLE_QUOTA.latencyMs} ms to first token, ${IDLE_QUOTA.tps} tokens/s)`,
    `${'AGENT_PARALLEL'.padEnd(16)}${'chats'.padStart(7)}${'mean ms'.padStart(10)}${'p50 ms'.padStart(10)}${'p95 ms'.padStart(10)}${'calls/chat'.padStart(12)}${'drafts s/u/w'.padStart(15)}`,
    ...idle.map(
      (result) =>
        `${result.mode.padEnd(16)}${String(result.completed).padStart(7)}${String(result.meanMs).padStart(10)}${String(result.p50Ms).padStart(10)}` +
        `${String(result.p95Ms).padStart(10)}${result.callsPerChat.toFixed(2).padStart(12)}${drafts(result.drafts).padStart(15)}`,
    ),
  ];
  const [off, on] = idle;
  if (off && on)
    idleLines.push(
      `mean completion time with AGENT_PARALLEL=on: ${(((off.meanMs - on.meanMs) / off.meanMs) * 100).toFixed(1)} % shorter`,
    );
  const overloadLines = [
    `parallel, overload (open arrivals at 2x capacity, short messages: ${SHORT_CALLS} calls in sequence; quota ${OVERLOAD_QUOTA.rpm} rpm, ` +
      `${OVERLOAD_QUOTA.concurrency} concurrent, ~2 s calls)`,
    `${'AGENT_PARALLEL'.padEnd(16)}${'offered'.padStart(9)}${'done'.padStart(6)}${'refused'.padStart(9)}${'failed'.padStart(8)}${'calls'.padStart(7)}${'calls/done'.padStart(12)}${'drafts in overload'.padStart(20)}${'drafts s/u/w'.padStart(15)}`,
    ...overload.map(
      (result) =>
        `${result.mode.padEnd(16)}${String(result.offered).padStart(9)}${String(result.completed).padStart(6)}${String(result.refused).padStart(9)}` +
        `${String(result.failed).padStart(8)}${String(result.providerCalls).padStart(7)}${result.callsPerCompletedChat.toFixed(2).padStart(12)}` +
        `${String(result.draftsWhileOverloaded).padStart(20)}${drafts(result.drafts).padStart(15)}`,
    ),
  ];
  // --part runs one of the two: print only what ran.
  return [idle.length > 0 ? idleLines : [], overload.length > 0 ? overloadLines : []]
    .filter((lines) => lines.length > 0)
    .map((lines) => lines.join('\n'))
    .join('\n\n');
}

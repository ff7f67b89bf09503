import fs from 'node:fs';
import path from 'node:path';
import type { CacheStatus } from '../../api/llm/cache/cache-stats';
import { startBenchPair, delay, resultsDirectory, type BenchPair } from './bench-pair';
import { runChat, type ChatRecord } from './chat-client';
import { getJson } from './resource-sampler';
import type { SimQuota, TroupeRuntime } from './server-processes';
import { seededRandom } from './statistics';
import {
  QUESTIONS,
  ZIPF_EXPONENT,
  ZIPF_QUESTION_COUNT,
  expectedDistinct,
  zipfSampler,
} from './zipf-questions';

/**
 * `npm run bench -- --scenario cache`: 300 users each open a few new conversations with a first
 * question drawn by Zipf's law (s = 1.0) from 200 questions, once with LLM_CACHE=off and once with
 * it on, on the same seeded question sequence. Prints the hit rate, provider calls per chat and the
 * cost saved, against the brief's target (hit rate 20 % → 60 %, provider calls halved).
 */

export interface CacheScenarioOptions {
  users: number;
  questionsPerUser: number;
  rampS: number;
  thinkS: number;
  seed: number;
  runtime: TroupeRuntime;
  outDir: string;
}

/** A quota roomy enough that no chat is refused: this scenario measures the cache, not the scheduler. */
const QUOTA: SimQuota = { rpm: 12_000, concurrency: 200, latencyMs: 200, tps: 400 };

interface VariantResult {
  variant: 'off' | 'on';
  chats: number;
  completed: number;
  refused: number;
  failed: number;
  providerCalls: number;
  provider429: number;
  callsPerCompletedChat: number;
  p50CompletionMs?: number;
  p95CompletionMs?: number;
  cache?: CacheStatus;
  wallS: number;
}

export async function runCacheScenario(options: CacheScenarioOptions): Promise<void> {
  const directory = resultsDirectory(options.outDir, 'cache');
  const random = seededRandom(options.seed);
  const draw = zipfSampler(ZIPF_QUESTION_COUNT, ZIPF_EXPONENT, random);
  const plan = Array.from({ length: options.users }, () =>
    Array.from({ length: options.questionsPerUser }, () => QUESTIONS[draw()]),
  );
  const thinks = plan.map((questions) => questions.map(() => (0.5 + random()) * options.thinkS * 1000));
  const draws = options.users * options.questionsPerUser;
  const distinct = new Set(plan.flat().map((question) => question.rank)).size;

  const results: VariantResult[] = [];
  for (const variant of ['off', 'on'] as const) {
    process.stdout.write(
      `cache: LLM_CACHE=${variant}, ${options.users} users × ${options.questionsPerUser} questions…\n`,
    );
    const pair = await startBenchPair(
      QUOTA,
      // AGENT_PARALLEL=off: calls per chat then differ only by what the cache saved.
      { LLM_CACHE: variant, AGENT_PARALLEL: 'off', LLM_CACHE_TTL: '3600' },
      { runtime: options.runtime, directory, label: `cache-${variant}` },
    );
    try {
      results.push(await runVariant(pair, variant, plan, thinks, options));
    } finally {
      await pair.stop();
    }
  }

  const [off, on] = results;
  const saved = 1 - on.callsPerCompletedChat / off.callsPerCompletedChat;
  const summary = {
    scenario: 'cache',
    questions: ZIPF_QUESTION_COUNT,
    exponent: ZIPF_EXPONENT,
    users: options.users,
    questionsPerUser: options.questionsPerUser,
    draws,
    distinctQuestionsAsked: distinct,
    expectedDistinct: Math.round(expectedDistinct(ZIPF_QUESTION_COUNT, ZIPF_EXPONENT, draws)),
    bestPossibleChatHitRate: 1 - distinct / draws,
    quota: QUOTA,
    seed: options.seed,
    results,
    providerCallsSaved: saved,
    brief: {
      callsPerChatAt20PercentHits: off.callsPerCompletedChat * 0.8,
      callsPerChatAt60PercentHits: off.callsPerCompletedChat * 0.4,
    },
  };
  fs.writeFileSync(path.join(directory, 'report.json'), `${JSON.stringify(summary, null, 2)}\n`);
  const table = formatCacheTable(summary, off, on, saved);
  fs.writeFileSync(path.join(directory, 'table.txt'), `${table}\n`);
  process.stdout.write(`\n${table}\n\nresults: ${directory}\n`);
}

async function runVariant(
  pair: BenchPair,
  variant: 'off' | 'on',
  plan: (typeof QUESTIONS)[number][][],
  thinks: number[][],
  options: CacheScenarioOptions,
): Promise<VariantResult> {
  const target = { url: new URL(pair.troupeUrl), agent: pair.agent };
  // One chat outside the question set, so the first measured ones do not pay for JIT warm-up.
  await runChat(
    target,
    {
      user: -1,
      userId: 'warm-up',
      kind: 'long',
      message: 'Warm up the server before we measure anything at all',
    },
    { timeoutMs: 60_000 },
  );
  await pair.resetSim();
  const startedAt = Date.now();
  const records: ChatRecord[] = [];
  await Promise.all(
    plan.map(async (questions, user) => {
      await delay((user / plan.length) * options.rampS * 1000);
      for (const [index, question] of questions.entries()) {
        records.push(
          await runChat(
            target,
            { user, userId: `user-${user}`, kind: question.kind, message: question.text },
            { timeoutMs: 120_000 },
          ),
        );
        await delay(thinks[user][index]);
      }
    }),
  );
  const wallS = (Date.now() - startedAt) / 1000;
  // A cancelled chat's last call may still be landing: give it a moment before reading counters.
  await delay(1000);
  const stats = await pair.simStats();
  const status = await getJson<{ queue: { cache?: CacheStatus } }>(`${pair.troupeUrl}/api/queue/status`);
  const completed = records.filter((record) => record.outcome === 'completed');
  const times = completed.map((record) => record.completionMs ?? 0).sort((a, b) => a - b);
  return {
    variant,
    chats: records.length,
    completed: completed.length,
    refused: records.filter((record) => record.outcome === 'refused').length,
    failed: records.filter((record) => record.outcome !== 'completed' && record.outcome !== 'refused').length,
    providerCalls: stats.requests,
    provider429: stats.rejected429,
    callsPerCompletedChat: stats.requests / Math.max(1, completed.length),
    p50CompletionMs: Math.round(times[Math.floor(times.length * 0.5)] ?? 0),
    p95CompletionMs: Math.round(times[Math.min(times.length - 1, Math.floor(times.length * 0.95))] ?? 0),
    cache: status?.queue.cache,
    wallS,
  };
}

function formatCacheTable(
  summary: {
    draws: number;
    distinctQuestionsAsked: number;
    bestPossibleChatHitRate: number;
    users: number;
    questionsPerUser: number;
  },
  off: VariantResult,
  on: VariantResult,
  saved: number,
): string {
  const percent = (value: number) => `${(value * 100).toFixed(1)} %`;
  const row = (label: string, a: string, b: string) =>
    `${label.padEnd(34)}${a.padStart(14)}${b.padStart(14)}`;
  return [
    `cache: ${summary.users} users × ${summary.questionsPerUser} first questions = ${summary.draws} chats; ` +
      `Zipf s=${ZIPF_EXPONENT} over ${ZIPF_QUESTION_COUNT} questions (${summary.distinctQuestionsAsked} distinct asked, ` +
      `so at most ${percent(summary.bestPossibleChatHitRate)} of chats can be repeats)`,
    row('', 'LLM_CACHE=off', 'LLM_CACHE=on'),
    row(
      'chats completed / refused / failed',
      `${off.completed}/${off.refused}/${off.failed}`,
      `${on.completed}/${on.refused}/${on.failed}`,
    ),
    row('provider calls', String(off.providerCalls), String(on.providerCalls)),
    row(
      'provider calls per completed chat',
      off.callsPerCompletedChat.toFixed(2),
      on.callsPerCompletedChat.toFixed(2),
    ),
    row('cacheHitRate (calls)', off.cache?.cacheHitRate ?? '—', on.cache?.cacheHitRate ?? '—'),
    row(
      'hits / shared in flight / misses',
      '—',
      `${on.cache?.hits}/${on.cache?.sharedHits}/${on.cache?.misses}`,
    ),
    row('tokens saved', '—', String(on.cache?.tokensSaved ?? 0)),
    row(
      'completion p50 / p95 (ms)',
      `${off.p50CompletionMs}/${off.p95CompletionMs}`,
      `${on.p50CompletionMs}/${on.p95CompletionMs}`,
    ),
    row('provider 429s', String(off.provider429), String(on.provider429)),
    '',
    `provider calls saved: ${percent(saved)} (the brief: 20 % hits = ${(off.callsPerCompletedChat * 0.8).toFixed(2)} calls/chat, ` +
      `60 % hits = ${(off.callsPerCompletedChat * 0.4).toFixed(2)} calls/chat, i.e. halved)`,
  ].join('\n');
}

/**
 * npm run measure-store [-- --chats 100000 --runs 3]
 * Fills an embedded (SQLite) store with N multi-agent chats, then starts the built server on it and
 * on an empty store, and reports start time (spawn → ready) and RSS (idle, and after reading
 * conversations) for both. The goal: 100k chats start in < 2 s, RSS within a few MB of empty.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SqliteStore } from '../api/store/sqlite-store';
import type { NewMessage } from '../api/store/store';
import { troupeNodeFlags } from './troupe-node-flags';

const root = path.join(__dirname, '..');
const argv = process.argv.slice(2);
const flag = (name: string, fallback: number) => {
  const index = argv.indexOf(`--${name}`);
  return index >= 0 ? Number(argv[index + 1]) : fallback;
};
const CHATS = flag('chats', 100_000);
const RUNS = flag('runs', 3);
const READS = 200;

const words =
  'the plan covers quota limits retries backoff caching streaming agents critic host reporter'.split(' ');
const text = (length: number, seed: number) => {
  let out = '';
  for (let index = 0; out.length < length; index++) out += `${words[(seed + index * 7) % words.length]} `;
  return out.slice(0, length);
};

/** One chat as Troupe stores it: the question, four agents' work, the answer. */
function chatMessages(conversationId: string, seed: number): NewMessage[] {
  const usage = { promptTokens: 300, completionTokens: 120 };
  const timings = { waitMs: 12, processMs: 900 };
  return [
    { conversationId, role: 'user', content: text(120, seed) },
    {
      conversationId,
      role: 'agent',
      agent: 'host',
      content: text(400, seed + 1),
      usage,
      timings,
      runId: `r-${seed}`,
    },
    {
      conversationId,
      role: 'agent',
      agent: 'planner',
      content: text(900, seed + 2),
      usage,
      timings,
      runId: `r-${seed}`,
    },
    {
      conversationId,
      role: 'agent',
      agent: 'critic',
      content: text(300, seed + 3),
      usage,
      timings,
      runId: `r-${seed}`,
    },
    {
      conversationId,
      role: 'agent',
      agent: 'reporter',
      content: text(1500, seed + 4),
      usage,
      timings,
      runId: `r-${seed}`,
    },
    { conversationId, role: 'assistant', content: text(1500, seed + 4), runId: `r-${seed}` },
  ];
}

async function fill(directory: string): Promise<{ ms: number; bytes: number }> {
  const startedAt = Date.now();
  const store = new SqliteStore({ directory });
  await store.init();
  const batch = 200;
  for (let first = 0; first < CHATS; first += batch) {
    const messages: NewMessage[] = [];
    for (let index = first; index < Math.min(CHATS, first + batch); index++) {
      const id = `conv-${index}`;
      await store.ensureConversation(id, `user-${index % 5000}`);
      messages.push(...chatMessages(id, index));
    }
    // Several conversations in one append: one transaction.
    await store.appendMessages(messages);
  }
  await store.close();
  return { ms: Date.now() - startedAt, bytes: fs.statSync(path.join(directory, 'troupe.sqlite')).size };
}

function rssKb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
}

async function measureStart(
  directory: string,
): Promise<{ startMs: number; idleRssMb: number; afterReadsRssMb: number }> {
  const startedAt = process.hrtime.bigint();
  const child = spawn(process.execPath, [...troupeNodeFlags(root), 'dist/server.js'], {
    cwd: root,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', DATA_DIR: directory, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        const match = /ready at (http:\/\/\S+)/.exec(output);
        if (match) resolve(match[1]);
      });
      child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${output}`)));
    });
    const startMs = Number(process.hrtime.bigint() - startedAt) / 1e6;
    await new Promise((resolve) => setTimeout(resolve, 1500)); // let start-up garbage settle
    const idleRssMb = rssKb(child.pid!) / 1024;
    for (let index = 0; index < READS; index++) {
      const id = `conv-${Math.floor((index * 7919) % Math.max(1, CHATS))}`;
      const response = await fetch(`${url}/api/conversations/${id}`, { headers: { 'X-User-Id': 'user-0' } });
      await response.arrayBuffer();
    }
    await fetch(`${url}/api/health`).then((response) => response.arrayBuffer());
    const afterReadsRssMb = rssKb(child.pid!) / 1024;
    return { startMs, idleRssMb, afterReadsRssMb };
  } finally {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function main(): Promise<void> {
  process.stdout.write('building dist/ …\n');
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-measure-empty-'));
  const full = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-measure-full-'));
  try {
    process.stdout.write(`filling a store with ${CHATS} chats (6 messages each) …\n`);
    const filled = await fill(full);
    process.stdout.write(
      `filled in ${(filled.ms / 1000).toFixed(1)} s; troupe.sqlite is ${(filled.bytes / 1048576).toFixed(0)} MB\n`,
    );
    const initStore = new SqliteStore({ directory: full });
    const initStartedAt = process.hrtime.bigint();
    await initStore.init();
    const initMs = Number(process.hrtime.bigint() - initStartedAt) / 1e6;
    await initStore.close();

    const results: Record<'empty' | 'full', Awaited<ReturnType<typeof measureStart>>[]> = {
      empty: [],
      full: [],
    };
    for (let run = 0; run < RUNS; run++) {
      results.empty.push(await measureStart(empty));
      results.full.push(await measureStart(full));
    }
    const row = (name: 'empty' | 'full') => ({
      startMs: median(results[name].map((result) => result.startMs)),
      idleRssMb: median(results[name].map((result) => result.idleRssMb)),
      afterReadsRssMb: median(results[name].map((result) => result.afterReadsRssMb)),
    });
    const emptyRow = row('empty');
    const fullRow = row('full');
    process.stdout.write(
      `\nstore.init() on ${CHATS} chats: ${initMs.toFixed(1)} ms\n` +
        `median of ${RUNS} starts (node dist/server.js, spawn → ready; RSS idle / after ${READS} conversation reads):\n` +
        `  empty store      : start ${emptyRow.startMs.toFixed(0)} ms, RSS ${emptyRow.idleRssMb.toFixed(1)} / ${emptyRow.afterReadsRssMb.toFixed(1)} MB\n` +
        `  ${String(CHATS).padEnd(6)} chats     : start ${fullRow.startMs.toFixed(0)} ms, RSS ${fullRow.idleRssMb.toFixed(1)} / ${fullRow.afterReadsRssMb.toFixed(1)} MB\n` +
        `  difference       : start ${(fullRow.startMs - emptyRow.startMs).toFixed(0)} ms, RSS ${(fullRow.idleRssMb - emptyRow.idleRssMb).toFixed(1)} / ${(fullRow.afterReadsRssMb - emptyRow.afterReadsRssMb).toFixed(1)} MB\n`,
    );
  } finally {
    fs.rmSync(empty, { recursive: true, force: true });
    fs.rmSync(full, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`measure-store: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});

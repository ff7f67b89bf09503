/**
 * Measures what an open SSE stream costs the server: Troupe runs in this process with a small
 * SSE_MAX_CONCURRENT and a very slow simulated model, so almost every chat waits in the line with
 * its stream open; a child process (its own file-descriptor budget) opens N streams. Prints RSS and
 * heap before and after, and the bytes per open stream.
 *
 *   node --expose-gc --import tsx scripts/measure-sse-memory.ts [--streams 10000] [--max-concurrent 2]
 *        [--heap-snapshot FILE]   (a V8 heap snapshot with the streams open, for Chrome DevTools' Memory tab)
 *
 * Every stream is a real POST /api/chat: a conversation in the store, a run with its log, a place
 * in the waiting line, a token, and the socket. The figure is the whole cost of a waiting chat.
 */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { parseConfig } from '../config';
import { startTroupe } from '../api/troupe';

interface Options {
  streams: number;
  maxConcurrent: number;
  batch: number;
  heapSnapshot?: string;
  /** SSE_TOKEN_GRACE_MS / SSE_RESUME_GRACE_MS: 0 cancels every run the moment its client leaves (as sse-capacity). */
  graceMs: number;
}

function parseArgs(argv: string[]): Options & { client?: string } {
  const options: Options & { client?: string } = {
    streams: 10_000,
    maxConcurrent: 2,
    batch: 200,
    graceMs: 600_000,
  };
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1];
    if (argv[i] === '--streams') options.streams = Number(value);
    else if (argv[i] === '--max-concurrent') options.maxConcurrent = Number(value);
    else if (argv[i] === '--batch') options.batch = Number(value);
    else if (argv[i] === '--client') options.client = value;
    else if (argv[i] === '--heap-snapshot') options.heapSnapshot = value;
    else if (argv[i] === '--grace-ms') options.graceMs = Number(value);
    else continue;
    i++;
  }
  if (!Number.isInteger(options.streams) || options.streams < 1)
    throw new Error('--streams must be a positive integer');
  return options;
}

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

function snapshot(): { rss: number; heapUsed: number; external: number } {
  (globalThis as { gc?: () => void }).gc?.();
  const usage = process.memoryUsage();
  return { rss: usage.rss, heapUsed: usage.heapUsed, external: usage.external + usage.arrayBuffers };
}

/** The client side: opens `streams` chat streams in batches and holds them open until told to stop. */
async function runClient(url: string, options: Options): Promise<void> {
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  const open: http.ClientRequest[] = [];
  let waiting = 0;
  let failed = 0;
  const openOne = (index: number) =>
    new Promise<void>((resolve) => {
      const body = JSON.stringify({ message: `memory probe ${index}`, mode: 'single' });
      const request = http.request(`${url}/api/chat`, {
        method: 'POST',
        agent,
        headers: {
          Accept: 'text/event-stream',
          'Content-Type': 'application/json',
          'Content-Length': Buffer.byteLength(body),
          'X-User-Id': `probe-${index}`,
        },
      });
      request.on('error', () => {
        failed++;
        resolve();
      });
      request.on('response', (response) => {
        if (response.statusCode !== 200) {
          failed++;
          response.resume();
          resolve();
          return;
        }
        response.setEncoding('utf8');
        let seen = '';
        let settled = false;
        response.on('data', (chunk: string) => {
          if (settled) return;
          seen += chunk;
          // Open means: the server has admitted it (its first `queued`, or it started at once).
          if (seen.includes('event: queued') || seen.includes('event: agent_start')) {
            settled = true;
            seen = '';
            waiting++;
            resolve();
          }
        });
        response.on('error', () => undefined);
      });
      request.end(body);
      open.push(request);
    });
  for (let first = 0; first < options.streams; first += options.batch) {
    const count = Math.min(options.batch, options.streams - first);
    await Promise.all(Array.from({ length: count }, (_, offset) => openOne(first + offset)));
    process.send?.({ type: 'progress', opened: first + count, failed });
  }
  process.send?.({ type: 'open', opened: waiting, failed });
  process.on('message', (message: { type: string }) => {
    if (message.type !== 'stop') return;
    for (const request of open) request.destroy();
    process.exit(0);
  });
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  if (options.client) {
    await runClient(options.client, options);
    return;
  }
  if (!(globalThis as { gc?: unknown }).gc) {
    process.stderr.write('note: run with node --expose-gc for steadier figures\n');
  }
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-sse-memory-'));
  const config = parseConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    SSE_MAX_CONCURRENT: String(options.maxConcurrent),
    SSE_QUEUE_MAX: String(options.streams + 100),
    // The few running chats never finish during the measurement: everybody else keeps waiting.
    SIM_LATENCY_MS: '600000',
    SSE_TOKEN_GRACE_MS: String(options.graceMs),
    SSE_RESUME_GRACE_MS: String(options.graceMs),
    // LLM admission would (rightly) refuse chats that cannot finish in time: relaxed, as the
    // sse-capacity benchmark does, so the SSE layer is what gets measured.
    LLM_TIMEOUT: '3600000',
    LLM_QUEUE_MAX: '1000000',
  });
  const troupe = await startTroupe(config);
  let child: ChildProcess | undefined;
  try {
    // Warm up: load every module and JIT the request path before the baseline.
    await new Promise<void>((resolve, reject) => {
      http
        .get(`${troupe.url}/api/sse/status`, (response) => {
          response.resume();
          response.on('end', () => resolve());
        })
        .on('error', reject);
    });
    const before = snapshot();
    // The same snapshot before the streams, so the two can be compared (DevTools' Comparison view).
    if (options.heapSnapshot)
      v8.writeHeapSnapshot(options.heapSnapshot.replace(/(\.heapsnapshot)?$/, '.before.heapsnapshot'));
    process.stdout.write(
      `baseline: rss ${mib(before.rss)}, heap ${mib(before.heapUsed)}, external ${mib(before.external)}\n` +
        `opening ${options.streams} streams (SSE_MAX_CONCURRENT=${options.maxConcurrent}) from a child process…\n`,
    );
    const startedAt = Date.now();
    child = fork(
      __filename,
      ['--client', troupe.url, '--streams', String(options.streams), '--batch', String(options.batch)],
      {
        execArgv: ['--import', 'tsx'],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      },
    );
    const result = await new Promise<{ opened: number; failed: number }>((resolve, reject) => {
      child!.on('message', (message: { type: string; opened: number; failed: number }) => {
        if (message.type === 'progress' && message.opened % 2000 === 0) {
          process.stdout.write(
            `  ${message.opened} requested, ${message.failed} failed, rss ${mib(process.memoryUsage().rss)}\n`,
          );
        }
        if (message.type === 'open') resolve(message);
      });
      child!.once('exit', (code) => reject(new Error(`client exited early (${code})`)));
    });
    const status = await fetchJson(`${troupe.url}/api/sse/status`);
    const after = snapshot();
    if (options.heapSnapshot) {
      const file = v8.writeHeapSnapshot(options.heapSnapshot);
      process.stdout.write(`heap snapshot: ${file}\n`);
    }
    const open = Number(status.openStreams);
    const perStream = (after.rss - before.rss) / Math.max(1, open);
    const report = {
      streams: options.streams,
      opened: result.opened,
      failed: result.failed,
      openSeconds: Math.round((Date.now() - startedAt) / 100) / 10,
      sseStatus: status,
      rssBeforeMiB: +(before.rss / 2 ** 20).toFixed(1),
      rssAfterMiB: +(after.rss / 2 ** 20).toFixed(1),
      heapBeforeMiB: +(before.heapUsed / 2 ** 20).toFixed(1),
      heapAfterMiB: +(after.heapUsed / 2 ** 20).toFixed(1),
      rssBytesPerStream: Math.round(perStream),
      heapBytesPerStream: Math.round((after.heapUsed - before.heapUsed) / Math.max(1, open)),
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(
      `${open} open streams: rss ${mib(before.rss)} → ${mib(after.rss)} ` +
        `(${(perStream / 1024).toFixed(1)} KiB per stream; heap ${(report.heapBytesPerStream / 1024).toFixed(1)} KiB)\n`,
    );
  } finally {
    child?.removeAllListeners('exit');
    child?.send?.({ type: 'stop' });
    await new Promise((resolve) => setTimeout(resolve, 500));
    child?.kill('SIGKILL');
    await troupe.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

function fetchJson(url: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => resolve(JSON.parse(text) as Record<string, unknown>));
      })
      .on('error', reject);
  });
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});

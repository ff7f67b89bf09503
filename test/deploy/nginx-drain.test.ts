import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { openSse, type SseStream } from '../helpers/sse-client';
import { findNginx, startNginx, type RunningNginx } from '../helpers/nginx';
import { deleteRedisPrefix, randomRedisPrefix, testRedisClient, TEST_REDIS_URL } from '../helpers/redis';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';

const nginx = findNginx();
if (!nginx) process.stderr.write('nginx-drain: SKIPPED — nginx is not installed here\n');
const describeWithNginx = nginx ? describe : describe.skip;

/** A POST whose whole answer is read: status and headers of a refusal. */
function post(
  url: string,
  body: unknown,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream' },
    });
    request.on('error', reject);
    request.on('response', (response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => (text += chunk.toString()));
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body: text }),
      );
    });
    request.end(JSON.stringify(body));
  });
}

/**
 * A rolling restart's first half through the real nginx (deploy/nginx/troupe.conf): one instance
 * drains while chats keep arriving and one of its chats is still running.
 */
describeWithNginx('draining behind nginx (deploy/nginx/troupe.conf)', () => {
  let redis: Redis;
  const prefix = randomRedisPrefix('drain');
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-drain-'));
  let a: TestTroupe;
  let b: TestTroupe;
  let proxy: RunningNginx;

  beforeAll(async () => {
    redis = testRedisClient();
    const env = {
      REDIS_URL: TEST_REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
      DATA_DIR: dataDir,
      SIM_LATENCY_MS: '20',
      SIM_TOKENS_PER_S: '150',
      RUN_ADOPT_INTERVAL_MS: '200',
      SHUTDOWN_GRACE_MS: '30000',
    };
    [a, b] = await Promise.all([startTestTroupe(env), startTestTroupe(env)]);
    proxy = await startNginx(
      nginx!,
      [a, b].map((troupe) => `127.0.0.1:${troupe.port}`),
    );
    // Each instance learns how many are alive from its heartbeat (every 2 s): A must know of B.
    await new Promise((resolve) => setTimeout(resolve, 2500));
  });
  afterAll(async () => {
    await proxy?.stop();
    await Promise.all([a, b].map((troupe) => troupe?.stop()));
    await deleteRedisPrefix(redis, prefix);
    await redis.quit();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('while an instance drains: it answers 503 shutting_down with Retry-After and Connection: close, nginx sends new chats to the other, and its running chat is handed over and reached through nginx with Last-Event-ID', async () => {
    // A chat running on A (opened on A directly, so it is surely A's).
    const running = await openSse(`${a.url}/api/chat`, {
      body: { message: 'Plan a weekend of hiking near Geneva' },
    });
    const runId: string = (await running.waitFor((event) => event.event === 'run')).data.runId;
    await running.waitFor((event) => event.event === 'delta');
    const drained = a.close();

    const refused = await post(`${a.url}/api/chat`, { message: 'Hello' });
    expect(refused.status).toBe(503);
    expect(JSON.parse(refused.body).error.code).toBe('shutting_down');
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.headers.connection).toBe('close');

    // New chats through nginx while A drains: every one is served (by B), none sees the 503.
    const chats: SseStream[] = await Promise.all(
      [0, 1, 2, 3].map((index) =>
        openSse(`${proxy.url}/api/chat`, { body: { message: `Question ${index}` } }),
      ),
    );
    expect(chats.map((chat) => chat.status)).toEqual([200, 200, 200, 200]);

    // A's chat ends on A at its next agent step without a terminal event; through nginx, with
    // Last-Event-ID, the client follows it to the end wherever it went on.
    await running.ended;
    expect(running.events.some((event) => event.event === 'done' || event.event === 'error')).toBe(false);
    const resumed = await openSse(`${proxy.url}/api/runs/${runId}/events`, {
      headers: { 'Last-Event-ID': running.events.at(-1)!.id! },
    });
    await resumed.ended;
    const events = [...running.events, ...resumed.events];
    expect(events.map((event) => Number(event.id))).toEqual(events.map((_, index) => index + 1));
    expect(events.at(-1)?.event).toBe('done');

    await Promise.all(chats.map((chat) => chat.ended));
    expect(chats.map((chat) => chat.events.at(-1)?.event)).toEqual(['done', 'done', 'done', 'done']);
    await drained;
  }, 50_000);
});

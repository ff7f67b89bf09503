import type { Redis } from 'ioredis';
import { openSse } from '../helpers/sse-client';
import { findNginx, startNginx, type RunningNginx } from '../helpers/nginx';
import { deleteRedisPrefix, randomRedisPrefix, testRedisClient, TEST_REDIS_URL } from '../helpers/redis';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';
import { waitUntil } from '../streaming/wait-until';

const nginx = findNginx();
if (!nginx) {
  process.stderr.write(
    'nginx-cluster: SKIPPED — nginx is not installed here (apt-get install -y nginx; CI installs it in .ci/run)\n',
  );
}
const describeWithNginx = nginx ? describe : describe.skip;

/** Three instances sharing one Redis behind a real nginx running deploy/nginx/troupe.conf. */
describeWithNginx('three Troupe instances behind nginx (deploy/nginx/troupe.conf)', () => {
  let redis: Redis;
  const prefix = randomRedisPrefix('nginx');
  let instances: TestTroupe[] = [];
  const proxies: RunningNginx[] = [];
  const hostOf = (troupe: TestTroupe) => `127.0.0.1:${troupe.port}`;
  const ownerOf = (runId: string) => instances.find((troupe) => troupe.runs.get(runId) !== undefined);

  beforeAll(async () => {
    redis = testRedisClient();
    instances = await Promise.all(
      [0, 1, 2].map(() =>
        startTestTroupe({
          REDIS_URL: TEST_REDIS_URL,
          REDIS_KEY_PREFIX: prefix,
          // Slow enough that a chat streams for a few seconds, in many small deltas.
          SIM_LATENCY_MS: '20',
          SIM_TOKENS_PER_S: '120',
          SSE_RESUME_GRACE_MS: '30000',
        }),
      ),
    );
  });
  afterAll(async () => {
    await Promise.all(proxies.map((proxy) => proxy.stop()));
    await Promise.all(instances.map((troupe) => troupe.stop()));
    await deleteRedisPrefix(redis, prefix);
    await redis.quit();
  });

  test('a chat streams through nginx end to end, event by event (not buffered until the end)', async () => {
    const proxy = await startNginx(nginx!, instances.map(hostOf));
    proxies.push(proxy);
    const stream = await openSse(`${proxy.url}/api/chat`, {
      body: { message: 'Plan a weekend of hiking near Geneva with a rest day in between' },
    });
    expect(stream.status).toBe(200);
    expect(stream.headers['content-type']).toMatch(/^text\/event-stream/);
    const runId: string = (await stream.waitFor((event) => event.event === 'run')).data.runId;
    await stream.waitFor((event) => event.event === 'delta');
    // The first tokens reached the client through nginx while the run was still going.
    const owner = ownerOf(runId)!;
    expect(owner).toBeDefined();
    expect(owner.runs.get(runId)!.isFinished).toBe(false);
    await stream.ended;
    expect(stream.events.at(-1)?.event).toBe('done');
    expect(stream.events.map((event) => Number(event.id))).toEqual(
      owner.runs
        .get(runId)!
        .events()
        .map((record) => record.id),
    );
  });

  test('a client that drops resumes with Last-Event-ID through nginx onto another instance: the missed events, then done', async () => {
    const entry = await startNginx(nginx!, instances.map(hostOf));
    proxies.push(entry);
    const first = await openSse(`${entry.url}/api/chat`, {
      body: { message: 'Compare three ways to learn a language as an adult' },
    });
    const runId: string = (await first.waitFor((event) => event.event === 'run')).data.runId;
    await waitUntil(() => first.events.filter((event) => event.event === 'delta').length >= 3, 20_000);
    first.abort();
    const lastId = first.events.at(-1)!.id!;
    const owner = ownerOf(runId)!;
    const others = instances.filter((troupe) => troupe !== owner);
    // nginx pinned to the instances that do not run the chat: the resume cannot land on its owner.
    const elsewhere = await startNginx(nginx!, others.map(hostOf));
    proxies.push(elsewhere);

    const resumed = await openSse(`${elsewhere.url}/api/runs/${runId}/events`, {
      headers: { 'Last-Event-ID': lastId },
    });
    expect(resumed.status).toBe(200);
    await resumed.ended;
    expect(resumed.events.at(-1)?.event).toBe('done');
    expect(Number(resumed.events[0].id)).toBe(Number(lastId) + 1);
    const ids = [...first.events, ...resumed.events].map((event) => Number(event.id));
    expect(ids).toEqual(
      owner.runs
        .get(runId)!
        .events()
        .map((record) => record.id),
    );
    expect(others.every((troupe) => troupe.runs.get(runId) === undefined)).toBe(true);
  });
});

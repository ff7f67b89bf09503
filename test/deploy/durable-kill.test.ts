import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { runDurableChat } from '../../scripts/bench/durable-client';
import { startTroupeServer, type ChildServer } from '../../scripts/bench/server-processes';
import { findNginx, startNginx, type RunningNginx } from '../helpers/nginx';
import { deleteRedisPrefix, randomRedisPrefix, testRedisClient, TEST_REDIS_URL } from '../helpers/redis';
import { eventually } from '../helpers/eventually';
import { waitUntil } from '../streaming/wait-until';

const nginx = findNginx();
if (!nginx) process.stderr.write('durable-kill: SKIPPED — nginx is not installed here\n');
const describeWithNginx = nginx ? describe : describe.skip;

/**
 * A deploy and a crash, with real processes: three Troupe processes behind the real nginx, under
 * steady load; a rolling restart, then one of them SIGKILLed while chats run on it. Drained chats
 * are handed over, the killed one's are adopted; clients that reconnect with Last-Event-ID through
 * nginx read every chat to `done`, each event once.
 */
describeWithNginx(
  'three Troupe processes behind nginx: a rolling restart, then a SIGKILL mid-chat (durable chats)',
  () => {
    let redis: Redis;
    const prefix = randomRedisPrefix('kill');
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-kill-'));
    const instances: ChildServer[] = [];
    let proxy: RunningNginx | undefined;

    const start = (index: number, port = 0) => {
      const dataDir = path.join(root, `data-${index}`);
      fs.mkdirSync(dataDir, { recursive: true });
      return startTroupeServer(
        {
          PORT: String(port),
          HOST: '127.0.0.1',
          LOG_LEVEL: 'warn',
          DATA_DIR: dataDir,
          LLM_PROVIDER: 'sim',
          SIM_LATENCY_MS: '20',
          SIM_TOKENS_PER_S: '100',
          REDIS_URL: TEST_REDIS_URL,
          REDIS_KEY_PREFIX: prefix,
          RUN_ADOPT_INTERVAL_MS: '200',
        },
        'tsx',
        path.join(root, `troupe-${index}-${Date.now()}.log`),
      );
    };

    beforeAll(async () => {
      redis = testRedisClient();
      instances.push(...(await Promise.all([0, 1, 2].map((index) => start(index)))));
      proxy = await startNginx(
        nginx!,
        instances.map((instance) => new URL(instance.url).host),
      );
    }, 60_000);
    afterAll(async () => {
      await proxy?.stop();
      await Promise.all(instances.map((instance) => instance.stop(2000)));
      await deleteRedisPrefix(redis, prefix);
      await redis.quit();
      fs.rmSync(root, { recursive: true, force: true });
    });

    test('a rolling restart under steady load (SIGTERM each instance in turn, start it again) fails no chat', async () => {
      // The instances learn of each other from their heartbeats (every 2 s).
      await new Promise((resolve) => setTimeout(resolve, 2500));
      let restarting = true;
      const user = async (index: number) => {
        const records = [];
        while (restarting)
          records.push(await runDurableChat(proxy!.url, `Rolling question ${index}`, `roll-${index}`));
        return records;
      };
      const users = Promise.all([0, 1, 2, 3, 4].map((index) => user(index)));
      for (let index = 0; index < 3; index++) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        const port = Number(new URL(instances[index].url).port);
        await instances[index].stop(30_000);
        instances[index] = await start(index, port);
      }
      restarting = false;
      const records = (await users).flat();
      expect(records.length).toBeGreaterThanOrEqual(5);
      expect(records.filter((record) => record.outcome !== 'done')).toEqual([]);
      expect(records.filter((record) => record.idsBroken)).toHaveLength(0);
      expect(records.reduce((sum, record) => sum + record.restartedAgents, 0)).toBe(0);
    }, 90_000);

    test('every chat reaches done; the killed instance’s chats needed a reconnect, none showed a step twice', async () => {
      const chats = Promise.all(
        Array.from({ length: 6 }, (_, index) =>
          runDurableChat(proxy!.url, `Compare ways to learn language number ${index}`, `kill-user-${index}`),
        ),
      );
      // Mid-chat: every chat has begun its agents; kill the instance that owns the most of them.
      let owners: Record<string, string> = {};
      const poll = setInterval(
        () => void redis.hgetall(`${prefix}runs:durable`).then((all) => (owners = all)),
        50,
      );
      await waitUntil(() => Object.keys(owners).length >= 6, 20_000);
      clearInterval(poll);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const counts = instances.map(
        (instance) => Object.values(owners).filter((owner) => owner.includes(`:${instance.pid}:`)).length,
      );
      const victim = instances[counts.indexOf(Math.max(...counts))];
      process.kill(victim.pid, 'SIGKILL');

      const records = await chats;
      expect(records.map((record) => record.outcome)).toEqual(Array(6).fill('done'));
      expect(records.filter((record) => record.idsBroken)).toHaveLength(0);
      expect(records.reduce((sum, record) => sum + record.restartedAgents, 0)).toBe(0);
      expect(records.filter((record) => record.reconnects > 0).length).toBeGreaterThanOrEqual(
        Math.max(...counts),
      );
      // The instance that finished a run releases it just after sending `done`.
      await eventually(
        async () => ((await redis.hlen(`${prefix}runs:durable`)) === 0 ? true : undefined),
        10_000,
      );
    }, 60_000);
  },
);

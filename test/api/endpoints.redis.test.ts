import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { SimProvider } from '../../api/llm/providers/sim-provider';
import { TEST_REDIS_URL, deleteRedisPrefix, randomRedisPrefix, testRedisClient } from '../helpers/redis';
import { redisReachable } from '../helpers/redis-reachable';
import { openSse } from '../helpers/sse-client';
import { startTestTroupe } from '../helpers/test-server';

const FILE = `
endpoints:
  - {name: lite, provider: sim, maxConcurrent: 2, maxRpm: 600}
  - {name: pro, provider: sim, maxConcurrent: 3, maxRpm: 600}
routes: {host: [lite, pro], planner: [pro, lite], critic: [lite], reporter: [pro], default: [pro]}
`;

const describeWithRedis = redisReachable() ? describe : describe.skip;

describeWithRedis('several endpoints sharing their quotas through Redis (REDIS_URL)', () => {
  test("each endpoint's quota lives under its own key prefix; chats complete", async () => {
    const prefix = randomRedisPrefix('endpoints');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-endpoints-'));
    const file = path.join(dir, 'endpoints.yml');
    fs.writeFileSync(file, FILE);
    const redis = testRedisClient();
    const lite = new SimProvider({ latencyMs: 5, tokensPerSecond: 5000 });
    const pro = new SimProvider({ latencyMs: 5, tokensPerSecond: 5000 });
    const troupe = await startTestTroupe(
      {
        LLM_ENDPOINTS_FILE: file,
        REDIS_URL: TEST_REDIS_URL,
        REDIS_KEY_PREFIX: prefix,
        LLM_CACHE: 'off',
        CRITIC_MAX_ROUNDS: '0',
        TOOL_MAX_ROUNDS: '0',
      },
      { providers: { lite, pro } },
    );
    try {
      const stream = await openSse(`${troupe.url}/api/chat`, {
        body: { message: 'A question answered over two shared quotas', mode: 'multi_agent' },
      });
      await stream.ended;
      expect(stream.events[stream.events.length - 1].event).toBe('done');
      const keys = await redis.keys(`${prefix}endpoint:*`);
      expect(keys.some((key) => key.startsWith(`${prefix}endpoint:lite:llm:`))).toBe(true);
      expect(keys.some((key) => key.startsWith(`${prefix}endpoint:pro:llm:`))).toBe(true);
      const status = (await request(troupe.url).get('/api/queue/status').expect(200)).body.queue;
      expect(
        status.endpoints.map((endpoint: { name: string; maxConcurrency: number }) => [
          endpoint.name,
          endpoint.maxConcurrency,
        ]),
      ).toEqual([
        ['lite', 2],
        ['pro', 3],
      ]);
      expect(lite.stats().completed).toBeGreaterThan(0);
      expect(pro.stats().completed).toBeGreaterThan(0);
    } finally {
      await troupe.stop();
      await deleteRedisPrefix(redis, prefix);
      redis.disconnect();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

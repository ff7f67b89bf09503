import type { Redis } from 'ioredis';
import { systemClock } from '../../api/clock';
import { createLogger } from '../../api/logger';
import { Run } from '../../api/streaming/run';
import type { RunEvent } from '../../api/streaming/run-events';
import { RedisRunEventLog } from '../../api/streaming/redis/redis-run-event-log';
import { deleteRedisPrefix, randomRedisPrefix, testRedisClient } from '../helpers/redis';
import { waitUntil } from './wait-until';

describe('RedisRunEventLog', () => {
  let redis: Redis;
  let prefix: string;
  let ownerAlive = true;
  const log = () =>
    new RedisRunEventLog({
      client: redis,
      keyPrefix: prefix,
      instanceId: 'owner-1',
      isAlive: async () => ownerAlive,
      clock: systemClock,
      logger: createLogger('silent'),
      retentionMs: 60_000,
      maxEvents: 100,
      blockMs: 200,
    });

  beforeAll(() => {
    redis = testRedisClient();
  });
  beforeEach(() => {
    prefix = randomRedisPrefix('run-log');
    ownerAlive = true;
  });
  afterEach(() => deleteRedisPrefix(redis, prefix));
  afterAll(async () => {
    await redis.quit();
  });

  test("a run's events land in its stream with the run's event ids; its description names user and owner; keys expire", async () => {
    const events = log();
    const run = new Run('conversation-1', 'alice');
    events.record(run);
    run.emit('run', { runId: run.id, conversationId: 'conversation-1' });
    run.emit('agent_start', { agent: 'host' });
    run.emit('delta', { agent: 'host', text: 'hi' });
    const shared = await waitFor(() => events.find(run.id));
    expect(shared).toMatchObject({
      runId: run.id,
      userId: 'alice',
      conversationId: 'conversation-1',
      ownerId: 'owner-1',
    });
    expect(shared.terminalId).toBeUndefined();
    const entries = await redis.xrange(`${prefix}run:${run.id}:events`, '-', '+');
    expect(entries.map(([id]) => id)).toEqual(['1-0', '2-0', '3-0']);
    expect(await redis.pttl(`${prefix}run:${run.id}:events`)).toBeGreaterThan(0);

    // Following from Last-Event-ID 1: the later events, then live ones until the terminal one.
    const received: RunEvent[] = [];
    const following = events.follow(
      shared,
      1,
      (record) => received.push(record),
      new AbortController().signal,
    );
    await waitUntil(() => received.length === 2, 10_000);
    run.emit('done', {
      conversationId: 'conversation-1',
      messageId: 'm',
      answer: 'hi',
      usage: { promptTokens: 1, completionTokens: 1 },
      timings: { totalMs: 1, queueWaitMs: 0 },
    });
    await expect(following).resolves.toBe('terminal');
    expect(received.map((record) => [record.id, record.event])).toEqual([
      [2, 'agent_start'],
      [3, 'delta'],
      [4, 'done'],
    ]);
    expect(received[1].data).toEqual({ agent: 'host', text: 'hi' });
    expect((await events.find(run.id))?.terminalId).toBe(4);
    const ttl = await redis.pttl(`${prefix}run:${run.id}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  test('a follower whose run lost its owner ends with owner_lost instead of waiting forever', async () => {
    const events = log();
    const run = new Run('c', 'bob');
    events.record(run);
    run.emit('run', { runId: run.id, conversationId: 'c' });
    const shared = await waitFor(() => events.find(run.id));
    ownerAlive = false;
    const received: RunEvent[] = [];
    await expect(
      events.follow(shared, 0, (record) => received.push(record), new AbortController().signal),
    ).resolves.toBe('owner_lost');
    expect(received.map((record) => record.event)).toEqual(['run']);
  });

  test('a follower that leaves stops at once, mid-block', async () => {
    const events = log();
    const run = new Run('c', 'bob');
    events.record(run);
    run.emit('run', { runId: run.id, conversationId: 'c' });
    const shared = await waitFor(() => events.find(run.id));
    const controller = new AbortController();
    const following = events.follow({ ...shared }, 1, () => undefined, controller.signal);
    setTimeout(() => controller.abort(), 50);
    await expect(following).resolves.toBe('aborted');
  });
});

async function waitFor<T>(read: () => Promise<T | undefined>): Promise<T> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const value = await read();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error('never found');
}

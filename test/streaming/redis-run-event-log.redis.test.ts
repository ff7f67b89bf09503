import type { Redis } from 'ioredis';
import { ManualClock, systemClock } from '../../api/clock';
import { createLogger } from '../../api/logger';
import { Run } from '../../api/streaming/run';
import type { RunEvent } from '../../api/streaming/run-events';
import { RedisRunEventLog } from '../../api/streaming/redis/redis-run-event-log';
import { withCommands } from '../../api/redis/redis-commands';
import { deleteRedisPrefix, randomRedisPrefix, testRedisClient } from '../helpers/redis';
import { waitUntil } from './wait-until';

describe('RedisRunEventLog', () => {
  let redis: Redis;
  let prefix: string;
  let ownerAlive = true;
  /** Every log a test made: closed after it (a follower's blocking reader holds a connection). */
  const made: RedisRunEventLog[] = [];
  const log = () =>
    track(
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
      }),
    );
  const track = (events: RedisRunEventLog) => {
    made.push(events);
    return events;
  };

  beforeAll(() => {
    redis = testRedisClient();
  });
  beforeEach(() => {
    prefix = randomRedisPrefix('run-log');
    ownerAlive = true;
  });
  afterEach(async () => {
    for (const events of made.splice(0)) await events.close();
    await deleteRedisPrefix(redis, prefix);
  });
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
  test('the tokens of every run in one turn go in one command; any other event is sent at once, after them', async () => {
    const events = log();
    const runs = [new Run('c1', 'alice'), new Run('c2', 'bob')];
    for (const run of runs) {
      events.record(run);
      run.emit('run', { runId: run.id, conversationId: run.conversationId });
    }
    await waitFor(() => events.find(runs[1].id));
    const appends = jest.spyOn(withCommands(redis), 'appendRunEvents');
    for (let index = 0; index < 5; index++)
      for (const run of runs) run.emit('delta', { agent: 'host', text: `t${index}` });
    await waitUntil(() => appends.mock.calls.length === 1, 10_000);
    // Ten tokens of two runs, one command (two streams, two descriptions)...
    expect(appends.mock.calls[0][0]).toBe(4);
    // ...and an agent's end goes at once, its run's waiting token before it.
    runs[0].emit('delta', { agent: 'host', text: 'last' });
    runs[0].emit('agent_end', {
      agent: 'host',
      usage: { promptTokens: 1, completionTokens: 1 },
      waitMs: 0,
      processMs: 0,
      cached: false,
    });
    expect(appends).toHaveBeenCalledTimes(2);
    await appends.mock.results[1].value;
    appends.mockRestore();
    expect(await redis.xlen(`${prefix}run:${runs[1].id}:events`)).toBe(6);
    const entries = await redis.xrange(`${prefix}run:${runs[0].id}:events`, '-', '+');
    expect(entries.map(([, fields]) => fields[1])).toEqual([
      'run',
      'delta',
      'delta',
      'delta',
      'delta',
      'delta',
      'delta',
      'agent_end',
    ]);
  });

  test('with a batching window (SSE_TOKEN_BATCH_MS), places in the line and tokens of several turns go in one command at its end', async () => {
    const clock = new ManualClock();
    const events = new RedisRunEventLog({
      client: redis,
      keyPrefix: prefix,
      instanceId: 'owner-1',
      isAlive: async () => true,
      clock,
      logger: createLogger('silent'),
      retentionMs: 60_000,
      maxEvents: 100,
      tokenBatchMs: 20,
    });
    const run = new Run('c1', 'alice');
    events.record(run);
    run.emit('run', { runId: run.id, conversationId: run.conversationId });
    await waitFor(() => events.find(run.id));
    const appends = jest.spyOn(withCommands(redis), 'appendRunEvents');
    run.emit('queued', { position: 2, estimatedWaitMs: null, token: 'tk' });
    await new Promise((resolve) => setImmediate(resolve));
    for (let index = 0; index < 3; index++) {
      run.emit('delta', { agent: 'host', text: `t${index}` });
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(appends).not.toHaveBeenCalled();
    clock.advance(20);
    expect(appends).toHaveBeenCalledTimes(1);
    await appends.mock.results[0].value;
    appends.mockRestore();
    const entries = await redis.xrange(`${prefix}run:${run.id}:events`, '-', '+');
    expect(entries.map(([, fields]) => fields[1])).toEqual(['run', 'queued', 'delta', 'delta', 'delta']);
    await events.close();
  });

  test('a run another instance owns now is fenced off alone: the other runs of the same command are appended', async () => {
    const fenced: string[] = [];
    const fencing = new RedisRunEventLog({
      client: redis,
      keyPrefix: prefix,
      instanceId: 'owner-1',
      isAlive: async () => true,
      clock: systemClock,
      logger: createLogger('silent'),
      retentionMs: 60_000,
      maxEvents: 100,
      onFenced: (runId) => fenced.push(runId),
    });
    const [kept, taken] = [new Run('c1', 'alice'), new Run('c2', 'bob')];
    for (const run of [kept, taken]) {
      fencing.record(run);
      run.emit('run', { runId: run.id, conversationId: run.conversationId });
    }
    await waitFor(() => fencing.find(taken.id));
    await redis.hset(`${prefix}run:${taken.id}`, 'owner', 'owner-2');
    kept.emit('delta', { agent: 'host', text: 'a' });
    taken.emit('delta', { agent: 'host', text: 'b' });
    await waitUntil(() => fenced.length === 1, 10_000);
    expect(fenced).toEqual([taken.id]);
    expect(await redis.xlen(`${prefix}run:${kept.id}:events`)).toBe(2);
    expect(await redis.xlen(`${prefix}run:${taken.id}:events`)).toBe(1);
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

import { ManualClock } from '../../api/clock';
import { Aimd } from '../../api/llm/aimd';
import { createLlmScheduler } from '../../api/llm/create-llm-scheduler';
import { InMemoryLimiter, type LimiterSnapshot } from '../../api/llm/limiter';
import type { ClusterChatCount } from '../../api/llm/llm-scheduler-options';
import { FakeProvider, llmConfig } from './helpers';

/**
 * Cluster-wide admission: the chats the other instances admitted (their published counts) count
 * against the same quota, so N instances do not each admit a whole quota's worth.
 */
describe('admission across instances', () => {
  function scheduler(othersAdmittedChats: number) {
    const clock = new ManualClock();
    return createLlmScheduler({
      config: llmConfig({ LLM_QUEUE_MAX: '5' }),
      provider: new FakeProvider(clock),
      clock,
      otherInstances: { othersAdmittedChats: () => othersAdmittedChats },
    });
  }

  test('counts the other instances’ admitted chats against the chat bound', async () => {
    await expect(scheduler(5).admit({ userId: 'u', runId: 'r1', expectedCalls: 4 })).rejects.toMatchObject({
      code: 'overloaded',
    });
    const admitted = await scheduler(4).admit({ userId: 'u', runId: 'r1', expectedCalls: 4 });
    admitted.release('failed');
  });

  /** The shared count as Redis keeps it: one figure per instance, summed at each report. */
  function sharedCount() {
    const held = new Map<string, number>();
    let reachable = true;
    return {
      held,
      cut: () => {
        reachable = false;
      },
      port(instance: string): ClusterChatCount {
        return {
          report: async (count) => {
            if (!reachable) return undefined;
            held.set(instance, count);
            return [...held.values()].reduce((sum, value) => sum + value, 0);
          },
        };
      },
    };
  }

  function instance(count: ClusterChatCount, othersFromHeartbeat = 0) {
    const clock = new ManualClock();
    return createLlmScheduler({
      config: llmConfig({ LLM_QUEUE_MAX: '3' }),
      provider: new FakeProvider(clock),
      clock,
      otherInstances: { othersAdmittedChats: () => othersFromHeartbeat },
      clusterChats: count,
    });
  }

  test('chats admitted a moment ago on another instance count at once, before any heartbeat', async () => {
    const shared = sharedCount();
    // The heartbeat still says the others hold nothing: only the shared count knows better.
    const a = instance(shared.port('a'));
    const b = instance(shared.port('b'));
    const first = await a.admit({ userId: 'u1', runId: 'a1', expectedCalls: 1 });
    await a.admit({ userId: 'u2', runId: 'a2', expectedCalls: 1 });
    await b.admit({ userId: 'u3', runId: 'b1', expectedCalls: 1 });
    expect(shared.held).toEqual(
      new Map([
        ['a', 2],
        ['b', 1],
      ]),
    );
    await expect(b.admit({ userId: 'u4', runId: 'b2', expectedCalls: 1 })).rejects.toMatchObject({
      code: 'overloaded',
    });
    // The refused chat holds nothing; a chat that ends on A frees room on B.
    expect(shared.held.get('b')).toBe(1);
    first.release('completed');
    await Promise.resolve();
    expect(shared.held.get('a')).toBe(1);
    const admitted = await b.admit({ userId: 'u4', runId: 'b2', expectedCalls: 1 });
    expect(shared.held.get('b')).toBe(2);
    admitted.release('failed');
  });

  /** What the fail-safe limiter says while Redis is lost: these limits are this instance's share. */
  class ShareLimiter extends InMemoryLimiter {
    override snapshot(): LimiterSnapshot {
      return { ...super.snapshot(), instanceShare: true };
    }
  }

  test('on its own share (Redis lost) only its own chats count: the others serve theirs on theirs', async () => {
    const shared = sharedCount();
    shared.cut();
    const clock = new ManualClock();
    const config = llmConfig({ LLM_QUEUE_MAX: '3' });
    const limits = { maxConcurrent: config.llm.maxConcurrent, maxRpm: config.llm.maxRpm, maxTpm: 0 };
    const aimd = new Aimd({ clock, ...limits });
    const onShare = createLlmScheduler({
      config,
      provider: new FakeProvider(clock),
      clock,
      limiter: { limiter: new ShareLimiter({ clock, ...limits, aimd }), aimd },
      // Their last heartbeat, frozen by the outage: three chats, a whole chat bound's worth.
      otherInstances: { othersAdmittedChats: () => 3 },
      clusterChats: shared.port('a'),
    });
    const admitted = await onShare.admit({ userId: 'u', runId: 'r1', expectedCalls: 1 });
    admitted.release('failed');
  });

  test('when the shared count cannot be reached, the last heartbeat’s figures decide', async () => {
    const shared = sharedCount();
    shared.cut();
    await expect(
      instance(shared.port('a'), 3).admit({ userId: 'u', runId: 'r1', expectedCalls: 1 }),
    ).rejects.toMatchObject({ code: 'overloaded' });
    const admitted = await instance(shared.port('a'), 2).admit({
      userId: 'u',
      runId: 'r1',
      expectedCalls: 1,
    });
    admitted.release('failed');
  });
});

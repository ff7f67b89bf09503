import { ManualClock } from '../../api/clock';
import { createLlmScheduler } from '../../api/llm/create-llm-scheduler';
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
});

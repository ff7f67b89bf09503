import http from 'node:http';
import { runChat } from '../../scripts/bench/chat-client';
import { CALLS_PER_KIND, composeMessage, type MessageKind } from '../../scripts/bench/chat-messages';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';

// The calls each message kind costs, as a real Troupe on the simulated model makes them: the matrix
// scenario sizes its workloads by these (chat-messages.ts CALLS_PER_KIND).

describe('calls per chat by message kind', () => {
  let troupe: TestTroupe;
  let agent: http.Agent;
  beforeAll(async () => {
    troupe = await startTestTroupe({ LLM_CACHE: 'off', AGENT_PARALLEL: 'off' });
    agent = new http.Agent({ keepAlive: true });
  });
  afterAll(async () => {
    agent.destroy();
    await troupe.stop();
  });

  test.each(Object.keys(CALLS_PER_KIND) as MessageKind[])('%s', async (kind) => {
    for (const u of [0.01, 0.37, 0.73]) {
      const chat = await runChat(
        { url: new URL(troupe.url), agent },
        { user: 1, userId: `calls-${kind}`, kind, message: composeMessage(kind, u) },
        { timeoutMs: 20_000 },
      );
      expect(chat.outcome).toBe('completed');
      expect(chat.calls).toBe(CALLS_PER_KIND[kind]);
    }
  });
});

import request from 'supertest';
import { startSimServer, type SimServer } from '../../api/llm/sim/sim-server';
import { openSse, type SseStream } from '../helpers/sse-client';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';

/**
 * A thinking model's reasoning streams as its own `reasoning` event, is counted, and never reaches
 * the answer, the stored conversation or the next agent's input — with the in-process simulator
 * and with Troupe speaking to sim-llm over HTTP (`thinking: {type: "enabled"}` on the wire).
 */

const THOUGHT = /Let me think/;

async function chat(troupe: TestTroupe, message: string): Promise<SseStream> {
  const stream = await openSse(`${troupe.url}/api/chat`, { body: { message } });
  await stream.ended;
  return stream;
}

async function expectReasoningKeptApart(troupe: TestTroupe, stream: SseStream): Promise<void> {
  const names = stream.events.map((event) => event.event);
  expect(names.at(-1)).toBe('done');
  const reasoning = stream.events.filter((event) => event.event === 'reasoning');
  // Every agent thinks before it answers: its reasoning comes before its first delta.
  for (const agent of ['host', 'planner', 'critic', 'reporter']) {
    const own = stream.events.filter((event) => event.data?.agent === agent);
    const firstReasoning = own.findIndex((event) => event.event === 'reasoning');
    const firstDelta = own.findIndex((event) => event.event === 'delta');
    expect(firstReasoning).toBeGreaterThanOrEqual(0);
    expect(firstReasoning).toBeLessThan(firstDelta);
  }
  expect(reasoning.map((event) => event.data.text).join('')).toMatch(THOUGHT);
  for (const event of stream.events.filter((entry) => entry.event === 'delta'))
    expect(event.data.text).not.toMatch(THOUGHT);
  const done = stream.events.at(-1)!;
  expect(done.data.answer).not.toMatch(THOUGHT);
  const conversation = await request(troupe.url)
    .get(`/api/conversations/${done.data.conversationId}`)
    .expect(200);
  for (const message of conversation.body.messages) expect(message.content).not.toMatch(THOUGHT);
  // Stored apart: every agent's message keeps its reasoning in its own field.
  const agentMessages = conversation.body.messages.filter(
    (message: { role: string }) => message.role !== 'user',
  );
  expect(agentMessages.length).toBeGreaterThanOrEqual(4);
  for (const message of agentMessages) expect(message.reasoning).toMatch(THOUGHT);
  const status = await request(troupe.url).get('/api/queue/status').expect(200);
  // At least those sent: a speculative draft that was discarded also thought (and was counted).
  expect(status.body.queue.counters.reasoningDeltas).toBeGreaterThanOrEqual(reasoning.length);
  const metrics = await request(troupe.url).get('/metrics').expect(200);
  expect(metrics.text).toMatch(/troupe_llm_reasoning_deltas_total\{agent="host"\} [1-9]/);
}

describe('thinking models', () => {
  it('the in-process simulator thinks aloud with LLM_THINKING=enabled; the reasoning stays apart (through the response cache)', async () => {
    const troupe = await startTestTroupe({ LLM_THINKING: 'enabled' });
    try {
      await expectReasoningKeptApart(troupe, await chat(troupe, 'Plan a weekend trip to Hangzhou'));
    } finally {
      await troupe.stop();
    }
  });

  it('over HTTP: the thinking field goes on the wire and reasoning_content comes back as reasoning events', async () => {
    let sim: SimServer | undefined;
    let troupe: TestTroupe | undefined;
    try {
      sim = await startSimServer({ port: 0, latencyMs: 5, tps: 5000 });
      troupe = await startTestTroupe({
        LLM_PROVIDER: 'openai',
        LLM_BASE_URL: sim.baseUrl,
        LLM_MODEL: 'doubao-seed-thinking',
        LLM_THINKING: 'enabled',
        LLM_CACHE: 'off',
      });
      await expectReasoningKeptApart(troupe, await chat(troupe, 'Plan a weekend trip to Hangzhou'));
    } finally {
      await troupe?.stop();
      await sim?.close();
    }
  });

  it('without LLM_THINKING no reasoning event is sent (the events stay exactly as before)', async () => {
    const troupe = await startTestTroupe({ LLM_CACHE: 'off' });
    try {
      const stream = await chat(troupe, 'Plan a weekend trip to Hangzhou');
      expect(stream.events.some((event) => event.event === 'reasoning')).toBe(false);
      expect(stream.events.at(-1)!.event).toBe('done');
    } finally {
      await troupe.stop();
    }
  });
});

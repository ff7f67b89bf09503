import request from 'supertest';
import { openSse } from '../helpers/sse-client';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';
import { SimProvider } from '../../api/llm/providers/sim-provider';
import type { CompletionOptions, CompletionRequest, Provider } from '../../api/llm/provider';
import { testConfig } from '../../config';

/** Wraps the sim model and keeps every request it was sent, so tests can see what the agents asked. */
class RecordingProvider implements Provider {
  readonly name = 'recording-sim';
  readonly requests: CompletionRequest[] = [];
  constructor(private readonly inner: Provider) {}
  complete(request: CompletionRequest, options: CompletionOptions) {
    this.requests.push(request);
    return this.inner.complete(request, options);
  }
}

describe('POST /api/chat over a real socket', () => {
  let troupe: TestTroupe;
  let recorder: RecordingProvider;

  beforeAll(async () => {
    const config = testConfig({ SIM_LATENCY_MS: '5', SIM_TOKENS_PER_S: '5000' });
    recorder = new RecordingProvider(new SimProvider(config.sim));
    troupe = await startTestTroupe({}, { provider: recorder });
  });
  afterAll(() => troupe.stop());

  test('streams a multi-agent chat: run, the four agents with deltas, then done', async () => {
    const stream = await openSse(`${troupe.url}/api/chat`, {
      body: { message: 'Plan a three-day trip to Kyoto for a family with two children', mode: 'multi_agent' },
    });
    await stream.ended;
    expect(stream.status).toBe(200);
    expect(stream.headers['content-type']).toMatch(/^text\/event-stream/);
    const names = stream.events.map((event) => event.event);
    expect(names[0]).toBe('run');
    expect(names[names.length - 1]).toBe('done');
    const started = stream.events
      .filter((event) => event.event === 'agent_start')
      .map((event) => event.data.agent);
    expect(new Set(started)).toEqual(new Set(['host', 'planner', 'critic', 'reporter']));
    expect(started[0]).toBe('host');
    expect(started[started.length - 1]).toBe('reporter');
    for (const agent of ['host', 'planner', 'critic', 'reporter']) {
      expect(stream.events.some((event) => event.event === 'delta' && event.data.agent === agent)).toBe(true);
    }
    const ends = stream.events.filter((event) => event.event === 'agent_end');
    expect(ends.length).toBe(started.length);
    for (const end of ends) {
      expect(end.data.usage.promptTokens).toBeGreaterThan(0);
      expect(end.data.usage.completionTokens).toBeGreaterThan(0);
      // Times in JSON bodies and events are whole ms (README, HTTP API).
      expect(Number.isInteger(end.data.waitMs)).toBe(true);
      expect(Number.isInteger(end.data.processMs)).toBe(true);
    }
    // Every event carries an id, strictly increasing from 1.
    expect(stream.events.map((event) => Number(event.id))).toEqual(
      stream.events.map((_, index) => index + 1),
    );

    const run = stream.events[0].data;
    const done = stream.events[stream.events.length - 1].data;
    expect(done.conversationId).toBe(run.conversationId);
    expect(done.answer.length).toBeGreaterThan(20);
    const reporterText = stream.events
      .filter((event) => event.event === 'delta' && event.data.agent === 'reporter')
      .map((event) => event.data.text)
      .join('');
    expect(reporterText.trim()).toBe(done.answer);

    const conversation = await request(troupe.url)
      .get(`/api/conversations/${done.conversationId}`)
      .expect(200);
    expect(conversation.body).toMatchObject({ id: done.conversationId, userId: 'anonymous' });
    const roles = conversation.body.messages.map((message: { role: string }) => message.role);
    expect(roles[0]).toBe('user');
    expect(roles[roles.length - 1]).toBe('assistant');
    expect(conversation.body.messages[0].content).toMatch(/Kyoto/);
    expect(conversation.body.messages.at(-1)).toMatchObject({ id: done.messageId, content: done.answer });
    const agentsStored = conversation.body.messages.filter((m: { role: string }) => m.role === 'agent');
    expect(agentsStored.map((m: { agent: string }) => m.agent)).toEqual(
      expect.arrayContaining(['host', 'planner', 'critic']),
    );
  });

  test('a follow-up message carries the conversation history to the agents', async () => {
    const first = await request(troupe.url)
      .post('/api/chat')
      .set('Accept', 'application/json')
      .set('X-User-Id', 'carol')
      .send({ message: 'My budget is exactly 4321 euros for the whole trip.' })
      .expect(200);
    const before = recorder.requests.length;
    const second = await request(troupe.url)
      .post('/api/chat')
      .set('Accept', 'application/json')
      .set('X-User-Id', 'carol')
      .send({
        message: 'What did I say my budget was?',
        conversationId: first.body.conversationId,
        mode: 'single',
      })
      .expect(200);
    expect(second.body.conversationId).toBe(first.body.conversationId);
    const followUp = recorder.requests.slice(before);
    expect(followUp).toHaveLength(1);
    const contents = followUp[0].messages.map((message) => message.content).join('\n');
    expect(contents).toMatch(/4321 euros/);
    expect(contents).toContain(first.body.answer);

    const conversation = await request(troupe.url)
      .get(`/api/conversations/${first.body.conversationId}`)
      .set('X-User-Id', 'carol')
      .expect(200);
    expect(conversation.body.messages.filter((m: { role: string }) => m.role === 'user')).toHaveLength(2);
    // Someone else neither reads nor continues it: for them it does not exist.
    await request(troupe.url)
      .get(`/api/conversations/${first.body.conversationId}`)
      .set('X-User-Id', 'mallory')
      .expect(404);
    await request(troupe.url)
      .post('/api/chat')
      .set('X-User-Id', 'mallory')
      .send({ message: 'hi', conversationId: first.body.conversationId })
      .expect(404);
  });

  test('Accept: application/json answers with one object describing every agent', async () => {
    const response = await request(troupe.url)
      .post('/api/chat')
      .set('Accept', 'application/json')
      .send({ message: 'Explain what a circuit breaker does in a web service' })
      .expect(200)
      .expect('Content-Type', /json/);
    expect(response.body).toEqual({
      conversationId: expect.any(String),
      messageId: expect.any(String),
      answer: expect.any(String),
      agents: expect.any(Array),
      usage: { promptTokens: expect.any(Number), completionTokens: expect.any(Number) },
      timings: { totalMs: expect.any(Number), queueWaitMs: expect.any(Number) },
    });
    expect(Number.isInteger(response.body.timings.totalMs)).toBe(true);
    expect(response.body.agents.map((agent: { agent: string }) => agent.agent)).toEqual(
      expect.arrayContaining(['host', 'planner', 'critic', 'reporter']),
    );
    expect(response.body.agents.at(-1).text).toBe(response.body.answer);
  });

  test('a JSON chat asks for non-streamed answers (nobody reads its deltas); a streamed chat does not', async () => {
    let before = recorder.requests.length;
    await request(troupe.url)
      .post('/api/chat')
      .set('Accept', 'application/json')
      .send({ message: 'Explain what a token bucket is, briefly please', mode: 'single' })
      .expect(200);
    expect(recorder.requests.slice(before).map((sent) => sent.stream)).toEqual([false]);
    before = recorder.requests.length;
    // A question of its own: the same one as another test's would be answered by the response cache.
    const stream = await openSse(`${troupe.url}/api/chat`, {
      body: { message: 'What does an SSE stream send first?', mode: 'single' },
    });
    await stream.ended;
    expect(recorder.requests.slice(before).map((sent) => sent.stream)).toEqual([undefined]);
  });

  test('single mode makes one answering call', async () => {
    const before = recorder.requests.length;
    const stream = await openSse(`${troupe.url}/api/chat`, {
      body: { message: 'What is SSE?', mode: 'single' },
    });
    await stream.ended;
    expect(recorder.requests.length - before).toBe(1);
    const started = stream.events.filter((event) => event.event === 'agent_start');
    expect(started).toHaveLength(1);
    expect(stream.events.at(-1)?.event).toBe('done');
  });

  test('a Chinese request gets a Chinese answer', async () => {
    const response = await request(troupe.url)
      .post('/api/chat')
      .set('Accept', 'application/json')
      .send({ message: '请帮我规划一次为期三天的北京旅行' })
      .expect(200);
    expect(response.body.answer).toMatch(/[\u4e00-\u9fff]/);
  });
});

describe('bad input gets a clear JSON error', () => {
  let troupe: TestTroupe;
  beforeAll(async () => {
    troupe = await startTestTroupe();
  });
  afterAll(() => troupe.stop());

  const post = (body: string | object, type = 'application/json') =>
    request(troupe.url)
      .post('/api/chat')
      .set('Content-Type', type)
      .send(typeof body === 'string' ? body : JSON.stringify(body));

  test.each([
    ['invalid JSON', '{"message": "hi"', /not valid JSON/],
    ['a missing message', {}, /message: is required/],
    ['an empty message', { message: '   ' }, /message: must contain visible text/],
    ['a non-string message', { message: 42 }, /message: must be a string/],
    ['a message over 8000 characters', { message: 'x'.repeat(8001) }, /at most 8000 characters/],
    ['an unknown mode', { message: 'hi', mode: 'solo' }, /mode: must be "multi_agent" or "single"/],
    [
      'a non-string conversationId',
      { message: 'hi', conversationId: 12 },
      /conversationId: must be a string/,
    ],
    ['a body that is not an object', [1, 2], /must be a JSON object/],
  ])('%s → 400 invalid_request', async (_name, body, pattern) => {
    const response = await post(body).expect(400).expect('Content-Type', /json/);
    expect(response.body.error.code).toBe('invalid_request');
    expect(response.body.error.message).toMatch(pattern);
  });

  test('an oversized body → 413 payload_too_large', async () => {
    const response = await post({ message: 'x'.repeat(70_000) }).expect(413);
    expect(response.body.error.code).toBe('payload_too_large');
  });

  test('an unknown conversation → 404 not_found', async () => {
    const response = await post({ message: 'hi', conversationId: 'does-not-exist' }).expect(404);
    expect(response.body.error).toEqual({
      code: 'not_found',
      message: 'Conversation does-not-exist was not found',
    });
    await request(troupe.url).get('/api/conversations/nope').expect(404);
  });

  test('an unknown route → 404 not_found in JSON', async () => {
    const response = await request(troupe.url).get('/api/nothing-here').expect(404);
    expect(response.body.error.code).toBe('not_found');
  });

  test('the server keeps serving after all of that', async () => {
    const response = await request(troupe.url)
      .post('/api/chat')
      .set('Accept', 'application/json')
      .send({ message: 'still alive?', mode: 'single' })
      .expect(200);
    expect(response.body.answer.length).toBeGreaterThan(0);
  });
});

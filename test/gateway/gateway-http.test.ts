import request from 'supertest';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';
import { eventually } from '../helpers/eventually';
import { parseDataBlocks, streamedContent } from './sse-chunks';

const searchTool = {
  type: 'function',
  function: {
    name: 'search_web',
    description: 'Search the web',
    parameters: { type: 'object', properties: { query: { type: 'string' } }, required: ['query'] },
  },
};

describe('/v1 without API keys: anonymous callers, OpenAI shapes', () => {
  let troupe: TestTroupe;
  beforeAll(async () => {
    troupe = await startTestTroupe();
  });
  afterAll(() => troupe.stop());

  test('GET /v1/models lists the provider model and troupe', async () => {
    const response = await request(troupe.url).get('/v1/models').expect(200);
    expect(response.body.object).toBe('list');
    expect(response.body.data.map((model: { id: string }) => model.id)).toEqual(['sim', 'troupe']);
  });

  test('a non-streamed completion is a chat.completion with usage', async () => {
    const response = await request(troupe.url)
      .post('/v1/chat/completions')
      .send({ model: 'sim', messages: [{ role: 'user', content: 'Say hello about tea' }], temperature: 0.2 })
      .expect(200);
    expect(response.body).toMatchObject({
      object: 'chat.completion',
      model: 'sim',
      choices: [{ index: 0, message: { role: 'assistant' }, finish_reason: 'stop' }],
      usage: { prompt_tokens: expect.any(Number), completion_tokens: expect.any(Number) },
    });
    expect(response.body.choices[0].message.content.length).toBeGreaterThan(0);
    expect(response.body.id).toMatch(/^chatcmpl-/);
  });

  test('a streamed completion relays chunks, then usage, then [DONE]', async () => {
    const response = await fetch(`${troupe.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'sim',
        stream: true,
        stream_options: { include_usage: true },
        messages: [{ role: 'user', content: 'Tell me about green tea in a few words' }],
      }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/text\/event-stream/);
    const blocks = parseDataBlocks(await response.text());
    expect(blocks.at(-1)).toBe('[DONE]');
    const usage = blocks.at(-2) as { choices: unknown[]; usage: { total_tokens: number } };
    expect(usage.choices).toEqual([]);
    expect(usage.usage.total_tokens).toBeGreaterThan(0);
    expect(streamedContent(blocks).length).toBeGreaterThan(0);
    const finish = blocks.at(-3) as { choices: Array<{ finish_reason: string }> };
    expect(finish.choices[0].finish_reason).toBe('stop');
  });

  test('tools: the model asks for a tool, the result comes back, the model answers', async () => {
    const question = { role: 'user', content: 'Search the latest news about solar panels' };
    const first = await request(troupe.url)
      .post('/v1/chat/completions')
      .send({ model: 'sim', messages: [question], tools: [searchTool] })
      .expect(200);
    const message = first.body.choices[0].message;
    expect(first.body.choices[0].finish_reason).toBe('tool_calls');
    expect(message.tool_calls[0]).toMatchObject({ type: 'function', function: { name: 'search_web' } });
    const second = await request(troupe.url)
      .post('/v1/chat/completions')
      .send({
        model: 'sim',
        tools: [searchTool],
        messages: [
          question,
          message,
          {
            role: 'tool',
            tool_call_id: message.tool_calls[0].id,
            content: JSON.stringify({ results: [{ title: 'Solar Weekly', snippet: 'Panels got cheaper' }] }),
          },
        ],
      })
      .expect(200);
    expect(second.body.choices[0].finish_reason).toBe('stop');
    expect(second.body.choices[0].message.content).toMatch(/Solar Weekly/);
  });

  test('bad requests are 400 in OpenAI error shape, naming the field', async () => {
    const noMessages = await request(troupe.url)
      .post('/v1/chat/completions')
      .send({ model: 'sim' })
      .expect(400);
    expect(noMessages.body).toEqual({
      error: {
        message: expect.stringMatching(/^messages/),
        type: 'invalid_request_error',
        code: 'invalid_request',
        param: null,
      },
    });
    const twoChoices = await request(troupe.url)
      .post('/v1/chat/completions')
      .send({ model: 'sim', n: 2, messages: [{ role: 'user', content: 'hi' }] })
      .expect(400);
    expect(twoChoices.body.error.message).toMatch(/^n:/);
    const badJson = await request(troupe.url)
      .post('/v1/chat/completions')
      .set('content-type', 'application/json')
      .send('{"model":')
      .expect(400);
    expect(badJson.body.error.code).toBe('invalid_request');
  });

  test('an unknown model is 404; an unknown /v1 path too', async () => {
    const response = await request(troupe.url)
      .post('/v1/chat/completions')
      .send({ model: 'gpt-nope', messages: [{ role: 'user', content: 'hi' }] })
      .expect(404);
    expect(response.body.error).toMatchObject({ code: 'not_found', type: 'invalid_request_error' });
    await request(troupe.url).get('/v1/embeddings').expect(404);
  });

  test('the troupe model runs the four agents and answers with the Reporter', async () => {
    const response = await request(troupe.url)
      .post('/v1/chat/completions')
      .send({
        model: 'troupe',
        messages: [{ role: 'user', content: 'Plan a weekend trip to the mountains' }],
      })
      .expect(200);
    expect(response.body.model).toBe('troupe');
    expect(response.body.choices[0].message.content.length).toBeGreaterThan(0);
    expect(response.body.troupe.agents.map((agent: { agent: string }) => agent.agent)).toEqual(
      expect.arrayContaining(['host', 'planner', 'critic', 'reporter']),
    );
  });

  test('the troupe model streamed: progress in `troupe` chunks, the answer as content', async () => {
    const response = await fetch(`${troupe.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'troupe',
        stream: true,
        messages: [{ role: 'user', content: 'Plan a picnic for six people' }],
      }),
    });
    const blocks = parseDataBlocks(await response.text());
    expect(blocks.at(-1)).toBe('[DONE]');
    const progress = blocks
      .filter((block): block is Record<string, unknown> => block !== '[DONE]' && 'troupe' in block)
      .map((block) => (block.troupe as { event: string }).event);
    expect(progress[0]).toBe('run');
    expect(progress).toEqual(expect.arrayContaining(['agent_start', 'agent_end', 'done']));
    expect(streamedContent(blocks).length).toBeGreaterThan(0);
  });
});

describe('/v1 with caller keys: auth, priority, limits, disconnects', () => {
  let troupe: TestTroupe;
  beforeAll(async () => {
    troupe = await startTestTroupe({
      API_KEYS: 'key-chat-service:chat-svc,key-nightly-batch:nightly:batch',
      SIM_LATENCY_MS: '50',
      SIM_TOKENS_PER_S: '40',
      LLM_CACHE: 'off',
    });
  });
  afterAll(() => troupe.stop());

  test('no key or an unknown key is 401 authentication_error', async () => {
    const missing = await request(troupe.url).get('/v1/models').expect(401);
    expect(missing.body.error).toMatchObject({ code: 'unauthorized', type: 'authentication_error' });
    await request(troupe.url)
      .post('/v1/chat/completions')
      .set('Authorization', 'Bearer wrong-key')
      .send({ model: 'sim', messages: [{ role: 'user', content: 'hi' }] })
      .expect(401);
  });

  test('X-Troupe-Priority lowers a class for one request and never raises it', async () => {
    const seen: string[] = [];
    const original = troupe.llm.complete.bind(troupe.llm);
    const spy = jest.spyOn(troupe.llm, 'complete').mockImplementation((meta, ...rest) => {
      seen.push(`${meta.userId}:${meta.agentType}`);
      return original(meta, ...rest);
    });
    try {
      const ask = (key: string, priority?: string) => {
        const call = request(troupe.url).post('/v1/chat/completions').set('Authorization', `Bearer ${key}`);
        if (priority) call.set('X-Troupe-Priority', priority);
        return call
          .send({ model: 'sim', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] })
          .expect(200);
      };
      await ask('key-chat-service');
      await ask('key-chat-service', 'batch');
      await ask('key-nightly-batch', 'interactive');
    } finally {
      spy.mockRestore();
    }
    expect(seen).toEqual(['chat-svc:interactive', 'chat-svc:batch', 'nightly:batch']);
    const bad = await request(troupe.url)
      .post('/v1/chat/completions')
      .set('Authorization', 'Bearer key-chat-service')
      .set('X-Troupe-Priority', 'urgent')
      .send({ model: 'sim', messages: [{ role: 'user', content: 'hi' }] })
      .expect(400);
    expect(bad.body.error.message).toMatch(/X-Troupe-Priority/);
  });

  test('a client that disconnects mid-stream aborts its provider call', async () => {
    const provider = troupe.provider as unknown as { stats(): { aborted: number; inFlight: number } };
    const abortedBefore = provider.stats().aborted;
    const controller = new AbortController();
    const response = await fetch(`${troupe.url}/v1/chat/completions`, {
      method: 'POST',
      signal: controller.signal,
      headers: { 'content-type': 'application/json', Authorization: 'Bearer key-chat-service' },
      body: JSON.stringify({
        model: 'sim',
        stream: true,
        messages: [{ role: 'user', content: 'Write a long story about a lighthouse keeper and the sea' }],
      }),
    });
    const reader = response.body!.getReader();
    await reader.read();
    controller.abort();
    await eventually(async () => (provider.stats().aborted === abortedBefore + 1 ? true : undefined));
    await eventually(async () => (troupe.scheduler.status().activeRequests === 0 ? true : undefined));
    expect(provider.stats().inFlight).toBe(0);
  });
});

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';

/**
 * The gateway in front of an OpenAI-compatible provider (LLM_PROVIDER=openai): the caller's
 * parameters reach the provider as they are, the model is the configured one.
 */
describe('/v1 pass-through to an OpenAI-compatible provider', () => {
  let provider: http.Server;
  let troupe: TestTroupe;
  const received: Array<Record<string, unknown>> = [];
  beforeAll(async () => {
    provider = http.createServer((req, res) => {
      let raw = '';
      req.setEncoding('utf8');
      req.on('data', (part: string) => (raw += part));
      req.on('end', () => {
        received.push(JSON.parse(raw) as Record<string, unknown>);
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({
            id: 'x',
            object: 'chat.completion',
            created: 0,
            model: 'ep-test',
            choices: [
              { index: 0, message: { role: 'assistant', content: '{"ok":true}' }, finish_reason: 'stop' },
            ],
            usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 },
          }),
        );
      });
    });
    await new Promise<void>((resolve) => provider.listen(0, '127.0.0.1', resolve));
    const { port } = provider.address() as AddressInfo;
    troupe = await startTestTroupe({
      LLM_PROVIDER: 'openai',
      LLM_BASE_URL: `http://127.0.0.1:${port}/v1`,
      LLM_MODEL: 'ep-test',
      LLM_CACHE: 'off',
    });
  });
  afterAll(async () => {
    await troupe.stop();
    await new Promise((resolve) => provider.close(resolve));
  });

  test('GET /v1/models lists the configured model', async () => {
    const response = await request(troupe.url).get('/v1/models').expect(200);
    expect(response.body.data.map((model: { id: string }) => model.id)).toEqual(['ep-test', 'troupe']);
  });

  test("the caller's parameters reach the provider; Troupe's own stay Troupe's", async () => {
    const response = await request(troupe.url)
      .post('/v1/chat/completions')
      .send({
        model: 'ep-test',
        messages: [
          { role: 'developer', content: 'Answer in JSON' },
          {
            role: 'user',
            content: [
              { type: 'text', text: 'Is it ' },
              { type: 'text', text: 'ok?' },
            ],
          },
        ],
        temperature: 0,
        max_completion_tokens: 50,
        top_p: 0.9,
        seed: 42,
        stop: ['\n\n'],
        response_format: { type: 'json_object' },
        user: 'someone',
        logprobs: true,
      })
      .expect(200);
    expect(response.body.choices[0].message.content).toBe('{"ok":true}');
    expect(response.body.usage).toEqual({ prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 });
    expect(received.at(-1)).toMatchObject({
      model: 'ep-test',
      messages: [
        { role: 'system', content: 'Answer in JSON' },
        { role: 'user', content: 'Is it ok?' },
      ],
      temperature: 0,
      max_tokens: 50,
      top_p: 0.9,
      seed: 42,
      stop: ['\n\n'],
      response_format: { type: 'json_object' },
      user: 'someone',
    });
    // Fields Troupe does not pass on are dropped, not forwarded to a provider that may reject them.
    expect(received.at(-1)).not.toHaveProperty('logprobs');
  });
});

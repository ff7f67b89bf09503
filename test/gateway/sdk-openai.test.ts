import OpenAI from 'openai';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import {
  API_KEY,
  LIMITED_KEY,
  SEARCH_RESULT,
  SEARCH_TOOL_PARAMETERS,
  holdLimitedKey,
  recordingFetch,
  startSdkServers,
  type SdkServers,
} from './sdk-harness';

/** The official `openai` SDK pointed at Troupe's /v1. */
describe('openai SDK against Troupe', () => {
  let servers: SdkServers;
  let client: OpenAI;
  beforeAll(async () => {
    servers = await startSdkServers();
    client = new OpenAI({ baseURL: `${servers.fast.url}/v1`, apiKey: API_KEY });
  });
  afterAll(() => servers.stop());

  test('lists the models', async () => {
    const ids: string[] = [];
    for await (const model of client.models.list()) ids.push(model.id);
    expect(ids).toEqual(['sim', 'troupe']);
  });

  test('a streamed answer with usage', async () => {
    const stream = await client.chat.completions.create({
      model: 'sim',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'Explain how tea is grown, briefly' }],
    });
    let text = '';
    let totalTokens = 0;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      if (chunk.usage) totalTokens = chunk.usage.total_tokens;
    }
    expect(text.length).toBeGreaterThan(20);
    expect(totalTokens).toBeGreaterThan(0);
  });

  test('a tool-call round trip', async () => {
    const tools = [
      {
        type: 'function' as const,
        function: { name: 'search_web', description: 'Search the web', parameters: SEARCH_TOOL_PARAMETERS },
      },
    ];
    const messages: ChatCompletionMessageParam[] = [
      { role: 'user', content: 'Search the latest news about solar panels' },
    ];
    const first = await client.chat.completions.create({ model: 'sim', messages, tools });
    const call = first.choices[0].message.tool_calls?.[0];
    expect(first.choices[0].finish_reason).toBe('tool_calls');
    expect(call?.type === 'function' && call.function.name).toBe('search_web');
    expect(JSON.parse(call!.type === 'function' ? call!.function.arguments : '{}')).toHaveProperty('query');
    messages.push(first.choices[0].message, {
      role: 'tool',
      tool_call_id: call!.id,
      content: JSON.stringify(SEARCH_RESULT),
    });
    const second = await client.chat.completions.create({ model: 'sim', messages, tools });
    expect(second.choices[0].finish_reason).toBe('stop');
    expect(second.choices[0].message.content).toContain('Solar Weekly');
  });

  test('the troupe model streams the Reporter answer, with agent progress beside it', async () => {
    const stream = await client.chat.completions.create({
      model: 'troupe',
      stream: true,
      messages: [{ role: 'user', content: 'Plan a small garden party' }],
    });
    let text = '';
    const events: string[] = [];
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      const progress = (chunk as unknown as { troupe?: { event: string } }).troupe;
      if (progress) events.push(progress.event);
    }
    expect(text.length).toBeGreaterThan(20);
    expect(events).toEqual(expect.arrayContaining(['run', 'agent_start', 'agent_end', 'done']));
  });

  test('a 429 is retried after its Retry-After', async () => {
    const holder = await holdLimitedKey(servers.slow);
    const recorder = recordingFetch(() => holder.release());
    const limited = new OpenAI({
      baseURL: `${servers.slow.url}/v1`,
      apiKey: LIMITED_KEY,
      maxRetries: 2,
      fetch: recorder.fetch,
    });
    const answer = await limited.chat.completions.create({
      model: 'sim',
      max_tokens: 8,
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(answer.choices[0].message.content?.length).toBeGreaterThan(0);
    expect(recorder.responses.map((entry) => entry.status)).toEqual([429, 200]);
    expect(recorder.responses[0].retryAfter).toBe('1');
    // The SDK waited what the header said before it asked again.
    expect(recorder.responses[1].at - recorder.responses[0].at).toBeGreaterThanOrEqual(900);
  });
});

import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { generateText, jsonSchema, stepCountIs, streamText, tool } from 'ai';
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

/** The Vercel AI SDK (`ai` with its OpenAI-compatible provider) pointed at Troupe's /v1. */
describe('Vercel AI SDK against Troupe', () => {
  let servers: SdkServers;
  let troupe: ReturnType<typeof createOpenAICompatible>;
  beforeAll(async () => {
    servers = await startSdkServers();
    troupe = createOpenAICompatible({
      name: 'troupe',
      baseURL: `${servers.fast.url}/v1`,
      apiKey: API_KEY,
      includeUsage: true,
    });
  });
  afterAll(() => servers.stop());

  test('a streamed answer with usage', async () => {
    const result = streamText({ model: troupe('sim'), prompt: 'Explain how tea is grown, briefly' });
    let text = '';
    for await (const part of result.textStream) text += part;
    expect(text.length).toBeGreaterThan(20);
    expect(await result.text).toBe(text);
    const usage = await result.usage;
    expect(usage.outputTokens).toBeGreaterThan(0);
  });

  test('a tool-call round trip (the SDK runs the tool and sends its result back)', async () => {
    const queries: string[] = [];
    const result = await generateText({
      model: troupe('sim'),
      prompt: 'Search the latest news about solar panels',
      tools: {
        search_web: tool({
          description: 'Search the web',
          inputSchema: jsonSchema<{ query: string }>(SEARCH_TOOL_PARAMETERS),
          execute: async ({ query }) => {
            queries.push(query);
            return SEARCH_RESULT;
          },
        }),
      },
      stopWhen: stepCountIs(3),
    });
    expect(queries).toHaveLength(1);
    expect(result.steps).toHaveLength(2);
    expect(result.steps[0].finishReason).toBe('tool-calls');
    expect(result.text).toContain('Solar Weekly');
  });

  test('the troupe model streams the Reporter answer', async () => {
    const result = streamText({ model: troupe('troupe'), prompt: 'Plan a small garden party' });
    const text = await result.text;
    expect(text.length).toBeGreaterThan(20);
    expect(await result.finishReason).toBe('stop');
  });

  test('a 429 is retried after its Retry-After', async () => {
    const holder = await holdLimitedKey(servers.slow);
    const recorder = recordingFetch(() => holder.release());
    const limited = createOpenAICompatible({
      name: 'troupe',
      baseURL: `${servers.slow.url}/v1`,
      apiKey: LIMITED_KEY,
      fetch: recorder.fetch,
    });
    const result = await generateText({
      model: limited('sim'),
      prompt: 'hi',
      maxOutputTokens: 8,
      maxRetries: 2,
    });
    expect(result.text.length).toBeGreaterThan(0);
    expect(recorder.responses.map((entry) => entry.status)).toEqual([429, 200]);
    expect(recorder.responses[1].at - recorder.responses[0].at).toBeGreaterThanOrEqual(900);
  });
});

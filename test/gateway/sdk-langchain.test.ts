import { AIMessage, HumanMessage, ToolMessage } from '@langchain/core/messages';
import { ChatOpenAI } from '@langchain/openai';
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

/** LangChain.js (`@langchain/openai`) pointed at Troupe's /v1. */
describe('LangChain ChatOpenAI against Troupe', () => {
  let servers: SdkServers;
  const chatModel = (model: string) =>
    new ChatOpenAI({
      model,
      apiKey: API_KEY,
      configuration: { baseURL: `${servers.fast.url}/v1` },
      streamUsage: true,
      maxRetries: 0,
    });
  beforeAll(async () => {
    servers = await startSdkServers();
  });
  afterAll(() => servers.stop());

  test('a streamed answer with usage', async () => {
    let text = '';
    let outputTokens = 0;
    for await (const chunk of await chatModel('sim').stream('Explain how tea is grown, briefly')) {
      text += typeof chunk.content === 'string' ? chunk.content : '';
      if (chunk.usage_metadata) outputTokens = chunk.usage_metadata.output_tokens;
    }
    expect(text.length).toBeGreaterThan(20);
    expect(outputTokens).toBeGreaterThan(0);
  });

  test('a tool-call round trip', async () => {
    const model = chatModel('sim').bindTools([
      {
        type: 'function',
        function: { name: 'search_web', description: 'Search the web', parameters: SEARCH_TOOL_PARAMETERS },
      },
    ]);
    const question = new HumanMessage('Search the latest news about solar panels');
    const first = (await model.invoke([question])) as AIMessage;
    expect(first.tool_calls?.[0]).toMatchObject({ name: 'search_web', args: { query: expect.any(String) } });
    const second = await model.invoke([
      question,
      first,
      new ToolMessage({ content: JSON.stringify(SEARCH_RESULT), tool_call_id: first.tool_calls![0].id! }),
    ]);
    expect(second.content).toContain('Solar Weekly');
  });

  test('the troupe model answers through the agents', async () => {
    const answer = await chatModel('troupe').invoke('Plan a small garden party');
    expect(typeof answer.content === 'string' && answer.content.length).toBeGreaterThan(20);
  });

  test('a 429 is retried after its Retry-After', async () => {
    const holder = await holdLimitedKey(servers.slow);
    const recorder = recordingFetch(() => holder.release());
    const limited = new ChatOpenAI({
      model: 'sim',
      apiKey: LIMITED_KEY,
      maxTokens: 8,
      maxRetries: 2,
      configuration: { baseURL: `${servers.slow.url}/v1`, fetch: recorder.fetch },
    });
    const answer = await limited.invoke('hi');
    expect(typeof answer.content === 'string' && answer.content.length).toBeGreaterThan(0);
    expect(recorder.responses.map((entry) => entry.status)).toEqual([429, 200]);
    expect(recorder.responses[1].at - recorder.responses[0].at).toBeGreaterThanOrEqual(900);
  });
});

import { OpenAIProvider } from '../../api/llm/providers/openai-provider';

/**
 * config/ is the only reader of the environment: the openai SDK's own OPENAI_* variables must have
 * no effect on what the provider sends (OPENAI_CUSTOM_HEADERS once added headers to every request).
 */
describe('OpenAIProvider ignores OPENAI_* environment variables', () => {
  const injected: Record<string, string> = {
    OPENAI_CUSTOM_HEADERS: 'X-Injected: yes\nAuthorization: Bearer from-env',
    OPENAI_BASE_URL: 'http://127.0.0.1:9/elsewhere',
    OPENAI_API_KEY: 'sk-from-env',
    OPENAI_ADMIN_KEY: 'sk-admin-from-env',
    OPENAI_ORG_ID: 'org-from-env',
    OPENAI_PROJECT_ID: 'proj-from-env',
    OPENAI_LOG: 'debug',
  };
  const saved: Record<string, string | undefined> = {};

  beforeAll(() => {
    for (const [name, value] of Object.entries(injected)) {
      saved[name] = process.env[name];
      process.env[name] = value;
    }
  });

  afterAll(() => {
    for (const name of Object.keys(injected)) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
  });

  test('the request goes to LLM_BASE_URL with LLM_API_KEY and none of the environment headers', async () => {
    const requests: { url: string; headers: Headers }[] = [];
    const logged: unknown[] = [];
    const originalDebug = console.debug;
    console.debug = (...args: unknown[]) => logged.push(args);
    try {
      const recordingFetch = (async (input: string | URL | Request, init?: RequestInit) => {
        requests.push({ url: String(input), headers: new Headers(init?.headers) });
        const body = {
          id: 'x',
          object: 'chat.completion',
          created: 0,
          model: 'm',
          choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
        };
        return new Response(JSON.stringify(body), {
          status: 200,
          headers: { 'content-type': 'application/json' },
        });
      }) as typeof fetch;
      const provider = new OpenAIProvider({
        baseUrl: 'http://127.0.0.1:1/v1',
        apiKey: 'sk-configured',
        model: 'm',
        stream: false,
        fetch: recordingFetch,
      });
      const result = await provider.complete(
        { messages: [{ role: 'user', content: 'hi' }] },
        { signal: new AbortController().signal },
      );
      expect(result.text).toBe('ok');
    } finally {
      console.debug = originalDebug;
    }
    expect(requests).toHaveLength(1);
    const [sent] = requests;
    expect(sent.url).toBe('http://127.0.0.1:1/v1/chat/completions');
    expect(sent.headers.get('authorization')).toBe('Bearer sk-configured');
    expect(sent.headers.get('x-injected')).toBeNull();
    expect(sent.headers.get('openai-organization')).toBeNull();
    expect(sent.headers.get('openai-project')).toBeNull();
    expect(logged).toEqual([]);
  });
});

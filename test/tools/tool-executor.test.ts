import { ManualClock, flushMicrotasks } from '../../api/clock';
import { ToolExecutor } from '../../api/tools/tool-executor';
import { callContext, deferred, echoTool, toolCall } from './helpers';

describe('ToolExecutor', () => {
  let clock: ManualClock;
  let executor: ToolExecutor;

  beforeEach(() => {
    clock = new ManualClock();
  });

  afterEach(() => executor?.close());

  it('offers each tool in the OpenAI tools shape, schema derived from zod', () => {
    const { plugin } = echoTool();
    executor = new ToolExecutor({ clock }).register(plugin);
    expect(executor.definitions()).toEqual([
      {
        name: 'echo',
        description: 'Repeats the text.',
        parameters: {
          type: 'object',
          properties: {
            text: { type: 'string', minLength: 1, maxLength: 50 },
            times: { type: 'integer', minimum: 1, maximum: 3 },
          },
          required: ['text'],
          additionalProperties: false,
        },
      },
    ]);
    expect(executor.definitions(['nope'])).toEqual([]);
    expect(() => executor.register(plugin)).toThrow(/already registered/);
  });

  it('answers the second identical call from the cache, and again misses after the TTL', async () => {
    const { plugin, executions } = echoTool();
    executor = new ToolExecutor({ clock }).register(plugin);

    const first = await executor.run(toolCall('echo', { text: 'hi', times: 2 }), callContext());
    // Same arguments in another key order: the same cache entry.
    const second = await executor.run(toolCall('echo', { times: 2, text: 'hi' }), callContext());
    expect(first).toMatchObject({ ok: true, cached: false, content: '{"echoed":"hihi"}' });
    expect(second).toMatchObject({ ok: true, cached: true, content: '{"echoed":"hihi"}' });
    expect(executions).toHaveLength(1);

    clock.advance(60_001);
    const third = await executor.run(toolCall('echo', { text: 'hi', times: 2 }), callContext());
    expect(third.cached).toBe(false);
    expect(executions).toHaveLength(2);
    expect(executor.status().tools[0]).toMatchObject({
      totalCalls: 3,
      successCalls: 3,
      cacheHitRate: '33%',
    });
  });

  it('never caches a failure', async () => {
    let fail = true;
    const { plugin, executions } = echoTool({
      work: async () => {
        if (fail) throw new Error('backend said no');
        return 'fine';
      },
    });
    executor = new ToolExecutor({ clock }).register(plugin);
    const failed = await executor.run(toolCall('echo', { text: 'x' }), callContext());
    expect(failed).toMatchObject({ ok: false, errorCode: 'tool_failed' });
    expect(failed.content).toContain('backend said no');
    fail = false;
    const retried = await executor.run(toolCall('echo', { text: 'x' }), callContext());
    expect(retried).toMatchObject({ ok: true, cached: false, content: 'fine' });
    expect(executions).toHaveLength(2);
  });

  it('runs ten concurrent identical calls once (single-flight)', async () => {
    const gate = deferred<string>();
    const { plugin, executions } = echoTool({ work: () => gate.promise });
    executor = new ToolExecutor({ clock }).register(plugin);

    const calls = Array.from({ length: 10 }, () =>
      executor.run(toolCall('echo', { text: 'same' }), callContext()),
    );
    await flushMicrotasks();
    expect(executions).toHaveLength(1);
    gate.resolve('shared result');
    const outcomes = await Promise.all(calls);
    expect(outcomes.every((outcome) => outcome.ok && outcome.content === 'shared result')).toBe(true);
    expect(new Set(outcomes.map((outcome) => outcome.callId)).size).toBe(10);
    expect(executions).toHaveLength(1);
  });

  it('keeps a shared execution alive while any caller still waits', async () => {
    const gate = deferred<string>();
    const { plugin, executions } = echoTool({ work: () => gate.promise });
    executor = new ToolExecutor({ clock }).register(plugin);
    const leaving = new AbortController();
    const first = executor.run(toolCall('echo', { text: 'same' }), callContext(leaving.signal));
    const second = executor.run(toolCall('echo', { text: 'same' }), callContext());
    await flushMicrotasks();
    leaving.abort();
    expect(await first).toMatchObject({ ok: false, errorCode: 'cancelled' });
    expect(executions[0].signal.aborted).toBe(false);
    gate.resolve('done');
    expect(await second).toMatchObject({ ok: true, content: 'done' });
  });

  it('aborts the work when the last caller leaves', async () => {
    const { plugin, executions } = echoTool({ work: () => new Promise(() => undefined) });
    executor = new ToolExecutor({ clock }).register(plugin);
    const caller = new AbortController();
    const outcome = executor.run(toolCall('echo', { text: 'bye' }), callContext(caller.signal));
    await flushMicrotasks();
    caller.abort();
    expect(await outcome).toMatchObject({ ok: false, errorCode: 'cancelled' });
    expect(executions[0].signal.aborted).toBe(true);
    // The caller leaving says nothing about the tool's health.
    expect(executor.status().tools[0]).toMatchObject({
      errorRate: '0%',
      status: 'healthy',
      circuit: 'closed',
    });
  });

  it('holds the rate limit under a burst; the excess fails fast with tool_rate_limited', async () => {
    const { plugin, executions } = echoTool({
      policy: {
        rateLimit: { maxConcurrent: 10, maxPerMinute: 5, timeout: 5000, maxWaitMs: 1000 },
        cache: { enabled: false, ttl: 0, keyStrategy: 'params' },
      },
    });
    executor = new ToolExecutor({ clock }).register(plugin);

    const outcomes = await Promise.all(
      Array.from({ length: 20 }, (_unused, index) =>
        executor.run(toolCall('echo', { text: `q${index}` }), callContext()),
      ),
    );
    // Every call settled without the clock moving: the excess was refused at once, not after a wait.
    expect(clock.now()).toBe(1_000_000);
    expect(outcomes.filter((outcome) => outcome.ok)).toHaveLength(5);
    const limited = outcomes.filter((outcome) => outcome.errorCode === 'tool_rate_limited');
    expect(limited).toHaveLength(15);
    expect(JSON.parse(limited[0].content)).toMatchObject({
      error: 'tool_rate_limited',
      retryAfterMs: 60_000,
    });
    expect(executions).toHaveLength(5);
    // Rate limiting is the tool system protecting the quota, not the tool failing: the circuit stays closed.
    expect(executor.status().tools[0].circuit).toBe('closed');

    clock.advance(60_000);
    expect((await executor.run(toolCall('echo', { text: 'later' }), callContext())).ok).toBe(true);
  });

  it('lets a burst wait briefly for a concurrency slot, then refuses the rest', async () => {
    const gates = [deferred<string>(), deferred<string>(), deferred<string>()];
    let started = 0;
    const { plugin } = echoTool({
      policy: {
        rateLimit: { maxConcurrent: 2, maxPerMinute: 1000, timeout: 60_000, maxWaitMs: 1000 },
        cache: { enabled: false, ttl: 0, keyStrategy: 'params' },
      },
      work: () => gates[started++].promise,
    });
    executor = new ToolExecutor({ clock }).register(plugin);

    const calls = Array.from({ length: 4 }, (_unused, index) =>
      executor.run(toolCall('echo', { text: `q${index}` }), callContext()),
    );
    await flushMicrotasks();
    expect(started).toBe(2);
    gates[0].resolve('first');
    await flushMicrotasks(20);
    expect(started).toBe(3); // the first waiter took the freed slot
    await clock.advanceAsync(1000);
    const outcomes = await Promise.all([calls[0], calls[3]]);
    expect(outcomes[0]).toMatchObject({ ok: true, content: 'first' });
    expect(outcomes[1]).toMatchObject({ ok: false, errorCode: 'tool_rate_limited' });
    gates[1].resolve('second');
    gates[2].resolve('third');
    expect((await calls[1]).ok && (await calls[2]).ok).toBe(true);
  });

  it('aborts the tool when its timeout fires and reports tool_timeout', async () => {
    let abortReason: unknown;
    const { plugin, executions } = echoTool({
      policy: { rateLimit: { maxConcurrent: 5, maxPerMinute: 100, timeout: 8000 } },
      work: (_args, context) =>
        new Promise((_resolve, reject) => {
          context.signal.addEventListener('abort', () => {
            abortReason = context.signal.reason;
            reject(new DOMException('aborted', 'AbortError'));
          });
        }),
    });
    executor = new ToolExecutor({ clock }).register(plugin);

    const pending = executor.run(toolCall('echo', { text: 'slow' }), callContext());
    await flushMicrotasks();
    expect(executions[0].signal.aborted).toBe(false);
    await clock.advanceAsync(8000);
    const outcome = await pending;
    expect(executions[0].signal.aborted).toBe(true);
    expect(abortReason).toMatchObject({ code: 'tool_timeout' });
    expect(outcome).toMatchObject({ ok: false, errorCode: 'tool_timeout', latencyMs: 8000 });
    expect(outcome.content).toContain('did not finish within 8000 ms');
  });

  it('does not wait for a tool that ignores its signal', async () => {
    const { plugin } = echoTool({
      policy: { rateLimit: { maxConcurrent: 5, maxPerMinute: 100, timeout: 100 } },
      work: () => new Promise(() => undefined),
    });
    executor = new ToolExecutor({ clock }).register(plugin);
    const pending = executor.run(toolCall('echo', { text: 'stuck' }), callContext());
    await flushMicrotasks();
    await clock.advanceAsync(100);
    expect(await pending).toMatchObject({ ok: false, errorCode: 'tool_timeout' });
  });

  it('turns bad arguments into a tool error that tells the model what to fix', async () => {
    const { plugin, executions } = echoTool();
    executor = new ToolExecutor({ clock }).register(plugin);

    const notJson = await executor.run(toolCall('echo', '{"text": "unterminated'), callContext());
    expect(notJson).toMatchObject({ ok: false, errorCode: 'invalid_arguments' });
    expect(JSON.parse(notJson.content).message).toMatch(/not valid JSON.*"required":\["text"\]/);

    const wrong = await executor.run(toolCall('echo', { text: '', times: 7 }), callContext());
    const message = JSON.parse(wrong.content).message as string;
    expect(wrong.errorCode).toBe('invalid_arguments');
    expect(message).toContain('Invalid arguments for echo');
    expect(message).toMatch(/at text/);
    expect(message).toMatch(/at times/);
    expect(message).toContain('Call echo again with a JSON object matching this schema');

    const missing = await executor.run(toolCall('echo', ''), callContext());
    expect(JSON.parse(missing.content).message).toMatch(/text/);

    const unknown = await executor.run(toolCall('search_everything', {}), callContext());
    expect(unknown).toMatchObject({ ok: false, errorCode: 'unknown_tool' });
    expect(unknown.content).toContain('Available tools: echo');

    expect(executions).toHaveLength(0);
    // The model's mistakes do not count against the tool's health.
    expect(executor.status().tools[0]).toMatchObject({
      totalCalls: 3,
      successCalls: 0,
      errorRate: '0%',
      status: 'healthy',
    });
  });

  it('trims large results to the token budget, dropping whole list items first', async () => {
    const { plugin } = echoTool({
      policy: { maxResultTokens: 60 },
      work: async () => ({
        results: Array.from({ length: 20 }, (_unused, index) => ({
          title: `result ${index}`,
          snippet: 'x'.repeat(40),
        })),
      }),
    });
    executor = new ToolExecutor({ clock }).register(plugin);
    const outcome = await executor.run(toolCall('echo', { text: 'big' }), callContext());
    const content = JSON.parse(outcome.content);
    expect(outcome.content.length).toBeLessThanOrEqual(60 * 4);
    expect(content.results.length).toBeGreaterThan(0);
    expect(content.results.length + content.omitted).toBe(20);
  });

  it('opens the circuit after repeated failures, serves the fallback, and reports the status', async () => {
    const { plugin, executions } = echoTool({
      policy: {
        cache: { enabled: false, ttl: 0, keyStrategy: 'none' },
        breaker: { errorThresholdPercentage: 50, volumeThreshold: 3, resetTimeout: 60_000 },
      },
      work: async () => {
        throw new Error('down');
      },
      fallback: (args) => ({ echoed: args.text, note: 'degraded' }),
    });
    executor = new ToolExecutor({ clock }).register(plugin);
    const outcomes = [];
    for (let index = 0; index < 5; index++)
      outcomes.push(await executor.run(toolCall('echo', { text: 'a' }), callContext()));
    expect(executions).toHaveLength(3); // the circuit opened after the third failure
    expect(outcomes.every((outcome) => outcome.ok && outcome.degraded)).toBe(true);
    expect(JSON.parse(outcomes[4].content)).toEqual({ echoed: 'a', note: 'degraded' });
    const status = executor.status();
    expect(status).toEqual({
      tools: [
        {
          name: 'echo',
          status: 'degraded',
          circuit: 'open',
          totalCalls: 5,
          successCalls: 0,
          cacheHitRate: '0%',
          averageLatency: 0,
          errorRate: '100%',
        },
      ],
    });
    expect(executor.health()).toBe('degraded');
    // The brief's `toolExecutor.getMetrics('search_web')`: the same row, by name.
    expect(executor.getMetrics('echo')).toEqual(executor.status().tools[0]);
    expect(executor.getMetrics('no_such_tool')).toBeUndefined();
    expect(executor.counters()[0]).toMatchObject({ name: 'echo', degradedCalls: 5, circuit: 'open' });
  });

  it('tells listeners about every outcome (the /metrics hook)', async () => {
    const { plugin } = echoTool();
    executor = new ToolExecutor({ clock }).register(plugin);
    const seen: string[] = [];
    const unsubscribe = executor.onOutcome((outcome) =>
      seen.push(`${outcome.tool}:${outcome.ok}:${outcome.cached}`),
    );
    await executor.run(toolCall('echo', { text: 'a' }), callContext());
    await executor.run(toolCall('echo', { text: 'a' }), callContext());
    unsubscribe();
    await executor.run(toolCall('echo', { text: 'a' }), callContext());
    expect(seen).toEqual(['echo:true:false', 'echo:true:true']);
  });
});

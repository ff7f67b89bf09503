import request from 'supertest';
import type {
  CompletionOptions,
  CompletionRequest,
  CompletionResult,
  Provider,
} from '../../api/llm/provider';
import { SimProvider } from '../../api/llm/providers/sim-provider';
import { detectRole } from '../../api/llm/sim/sim-model';
import { testConfig } from '../../config';
import { openSse, type SseEvent, type SseStream } from '../helpers/sse-client';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';
import { waitUntil } from '../streaming/wait-until';

// 8 words or more: the Critic approves at once (4 calls). Under 8: it asks for one revision (6 calls).
const LONG = 'Give me a step by step plan for building a circuit breaker in production';
const SHORT = 'Explain backpressure';

const simConfig = () => testConfig({ SIM_LATENCY_MS: '5', SIM_TOKENS_PER_S: '5000' }).sim;

async function chat(troupe: TestTroupe, message: string): Promise<SseStream> {
  const stream = await openSse(`${troupe.url}/api/chat`, { body: { message, mode: 'multi_agent' } });
  await stream.ended;
  return stream;
}

const indexOf = (stream: SseStream, predicate: (event: SseEvent) => boolean) =>
  stream.events.findIndex(predicate);
const lastIndexOf = (stream: SseStream, predicate: (event: SseEvent) => boolean) =>
  stream.events.map(predicate).lastIndexOf(true);

async function storedWork(troupe: TestTroupe, stream: SseStream) {
  const done = stream.events.find((event) => event.event === 'done')!.data;
  const conversation = await request(troupe.url).get(`/api/conversations/${done.conversationId}`);
  return {
    answer: done.answer as string,
    messages: conversation.body.messages.map(
      (message: { role: string; agent?: string; content: string }) => ({
        role: message.role,
        agent: message.agent,
        content: message.content,
      }),
    ),
  };
}

describe('AGENT_PARALLEL: the Reporter drafts while the Critic reviews', () => {
  const servers: Record<string, { troupe: TestTroupe; provider: SimProvider }> = {};

  beforeAll(async () => {
    for (const mode of ['on', 'off', 'auto']) {
      const provider = new SimProvider(simConfig());
      const troupe = await startTestTroupe({ AGENT_PARALLEL: mode, LLM_CACHE: 'off' }, { provider });
      servers[mode] = { troupe, provider };
    }
  });
  afterAll(() => Promise.all(Object.values(servers).map(({ troupe }) => troupe.stop())));

  test.each([LONG, SHORT])(
    'stored messages and the final answer are identical to a sequential run (%s)',
    async (message) => {
      const parallel = await chat(servers.on.troupe, message);
      const sequential = await chat(servers.off.troupe, message);
      expect(await storedWork(servers.on.troupe, parallel)).toEqual(
        await storedWork(servers.off.troupe, sequential),
      );
    },
  );

  test("the Reporter's events come only after the Critic's agent_end, once", async () => {
    const stream = await chat(servers.on.troupe, LONG);
    const criticEnd = lastIndexOf(
      stream,
      (event) => event.event === 'agent_end' && event.data.agent === 'critic',
    );
    const firstReporterEvent = indexOf(stream, (event) => event.data?.agent === 'reporter');
    expect(criticEnd).toBeGreaterThan(0);
    expect(firstReporterEvent).toBeGreaterThan(criticEnd);
    expect(stream.events[firstReporterEvent].event).toBe('agent_start');
    expect(
      stream.events.filter((event) => event.event === 'agent_start' && event.data.agent === 'reporter'),
    ).toHaveLength(1);
    expect(stream.events.at(-1)?.event).toBe('done');
  });

  test('a revision costs the withdrawn draft one call; sequential mode makes none', async () => {
    const on = servers.on.provider;
    const off = servers.off.provider;
    on.resetStats();
    off.resetStats();
    await chat(servers.on.troupe, SHORT);
    await chat(servers.off.troupe, SHORT);
    expect(off.stats().started).toBe(6);
    expect(on.stats().started).toBe(7);
    const metrics = await request(servers.on.troupe.url).get('/metrics');
    expect(metrics.text).toMatch(/troupe_agent_speculative_drafts_total\{event="withdrawn"\} [1-9]/);
    expect(metrics.text).toMatch(/troupe_agent_speculative_drafts_total\{event="used"\} [1-9]/);
  });

  test('auto speculates while the provider is idle', async () => {
    const provider = servers.auto.provider;
    provider.resetStats();
    await chat(servers.auto.troupe, SHORT);
    expect(provider.stats().started).toBe(7);
  });
});

/** The sim model, except that Reporter calls wait until the test opens the gate (or are aborted). */
class GatedReporterProvider implements Provider {
  readonly name = 'gated-sim';
  readonly reporterCalls: Array<{ signal: AbortSignal }> = [];
  private openGate!: () => void;
  private readonly gate = new Promise<void>((resolve) => (this.openGate = resolve));
  constructor(private readonly inner: Provider) {}

  open(): void {
    this.openGate();
  }

  async complete(request: CompletionRequest, options: CompletionOptions): Promise<CompletionResult> {
    if (detectRole(request.messages) === 'reporter') {
      this.reporterCalls.push({ signal: options.signal });
      await new Promise<void>((resolve, reject) => {
        options.signal.addEventListener('abort', () => reject(options.signal.reason), { once: true });
        void this.gate.then(resolve);
      });
    }
    return this.inner.complete(request, options);
  }
}

describe('AGENT_PARALLEL=on when the Critic asks for a revision', () => {
  test('the draft is cancelled at once and the user never sees its text', async () => {
    const provider = new GatedReporterProvider(new SimProvider(simConfig()));
    const troupe = await startTestTroupe({ AGENT_PARALLEL: 'on', LLM_CACHE: 'off' }, { provider });
    try {
      const stream = await openSse(`${troupe.url}/api/chat`, { body: { message: SHORT } });
      // The first review asks for a revision: the draft started beside it is aborted.
      await stream.waitFor((event) => event.event === 'agent_end' && event.data.agent === 'critic');
      await waitUntil(() => provider.reporterCalls[0]?.signal.aborted === true, 10_000);
      // The revised plan's review approves; its draft is the answer once it may proceed.
      await waitUntil(() => provider.reporterCalls.length === 2, 10_000);
      // No Reporter text yet: the first draft was cut before any, the second waits at the gate. (Its
      // agent_start may already be out, if the second review approved in the meantime.)
      expect(stream.events.some((event) => event.event === 'delta' && event.data?.agent === 'reporter')).toBe(
        false,
      );
      provider.open();
      await stream.ended;
      expect(provider.reporterCalls[1].signal.aborted).toBe(false);
      const reporterStarts = stream.events.filter(
        (event) => event.event === 'agent_start' && event.data.agent === 'reporter',
      );
      expect(reporterStarts).toHaveLength(1);
      const criticEnds = stream.events
        .map((event, index) => (event.event === 'agent_end' && event.data.agent === 'critic' ? index : -1))
        .filter((index) => index >= 0);
      expect(criticEnds).toHaveLength(2);
      expect(stream.events.indexOf(reporterStarts[0])).toBeGreaterThan(criticEnds[1]);
      expect(stream.events.at(-1)?.event).toBe('done');
    } finally {
      await troupe.stop();
    }
  });
});

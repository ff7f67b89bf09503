import request from 'supertest';
import { startSimServer, type SimServer, type SimServerOptions } from '../../api/llm/sim/sim-server';
import { parseSimServerArgs } from '../../api/llm/sim/sim-args';
import { openSse, type SseStream } from '../helpers/sse-client';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';

/**
 * The fault suite: Troupe (LLM_PROVIDER=openai) against sim-llm injecting each fault a provider
 * shows on a bad day. Every stream ends with `done` or a coded `error` — never silently, never
 * hung — the user's message is stored either way, and no provider call is left in flight.
 */

const TERMINAL = new Set(['done', 'error']);

async function withFaultySim(
  flags: string[],
  env: Record<string, string>,
  body: (context: { sim: SimServer; troupe: TestTroupe }) => Promise<void>,
): Promise<void> {
  // The flags go through sim-llm's own parser: what the test sets is what the command line takes.
  const options: SimServerOptions = parseSimServerArgs([
    '--port',
    '0',
    '--latency-ms',
    '20',
    '--tps',
    '2000',
    ...flags,
  ]);
  const sim = await startSimServer(options);
  const troupe = await startTestTroupe({
    LLM_PROVIDER: 'openai',
    LLM_BASE_URL: sim.baseUrl,
    LLM_MODEL: 'troupe-sim',
    LLM_MAX_CONCURRENT: '4',
    LLM_MAX_RPM: '6000',
    ...env,
  });
  try {
    await body({ sim, troupe });
  } finally {
    await troupe.stop();
    await sim.close();
  }
}

async function chat(troupe: TestTroupe, message: string, mode = 'single'): Promise<SseStream> {
  const stream = await openSse(`${troupe.url}/api/chat`, { body: { message, mode } });
  await stream.ended;
  return stream;
}

async function expectStored(troupe: TestTroupe, stream: SseStream, message: string): Promise<void> {
  const conversationId = stream.events[0].data.conversationId;
  const conversation = await request(troupe.url).get(`/api/conversations/${conversationId}`).expect(200);
  expect(conversation.body.messages[0]).toMatchObject({ role: 'user', content: message });
}

function terminal(stream: SseStream) {
  const last = stream.events.at(-1)!;
  if (!last) throw new Error(`no events: ${stream.status} ${stream.body}`);
  expect(TERMINAL.has(last.event)).toBe(true);
  expect(stream.events.filter((event) => TERMINAL.has(event.event))).toHaveLength(1);
  return last;
}

async function noCallLeft(sim: SimServer): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (sim.stats().inFlight > 0) {
    if (Date.now() > deadline) throw new Error(`calls still in flight: ${JSON.stringify(sim.stats())}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('provider faults (sim-llm fault flags)', () => {
  jest.setTimeout(60_000);

  test('every call answers 5xx: the stream ends with llm_unavailable', async () => {
    await withFaultySim(['--fail-percent', '100'], { LLM_TIMEOUT: '5000' }, async ({ sim, troupe }) => {
      const stream = await chat(troupe, 'will the provider answer?');
      expect(terminal(stream)).toMatchObject({ event: 'error', data: { code: 'llm_unavailable' } });
      expect(sim.stats().faults?.injected5xx).toBeGreaterThan(0);
      await expectStored(troupe, stream, 'will the provider answer?');
      await noCallLeft(sim);
    });
  });

  test('a fifth of calls answer 5xx: retries before the first token complete every chat', async () => {
    await withFaultySim(
      ['--fail-percent', '20', '--seed', '7'],
      { LLM_TIMEOUT: '60000' },
      async ({ sim, troupe }) => {
        for (let index = 0; index < 3; index++) {
          // Admission may refuse while it re-measures the provider; a client retries after Retry-After.
          let stream = await chat(troupe, `question ${index}`, 'multi_agent');
          for (let attempt = 0; stream.status === 503 && attempt < 10; attempt++) {
            expect(JSON.parse(stream.body).error.code).toBe('overloaded');
            await new Promise((resolve) =>
              setTimeout(resolve, Number(stream.headers['retry-after'] ?? 1) * 1000),
            );
            stream = await chat(troupe, `question ${index}`, 'multi_agent');
          }
          const last = terminal(stream);
          expect(last.event === 'done' ? 'done' : JSON.stringify(last.data)).toBe('done');
        }
        expect(sim.stats().faults?.injected5xx).toBeGreaterThan(0);
        await noCallLeft(sim);
      },
    );
  });

  test('the stream is cut mid-tokens: an explicit error, never a silent end or a done', async () => {
    await withFaultySim(['--cut-after-chunks', '3'], { LLM_TIMEOUT: '5000' }, async ({ sim, troupe }) => {
      const stream = await chat(troupe, 'a question whose answer is cut');
      expect(stream.events.some((event) => event.event === 'delta')).toBe(true);
      expect(terminal(stream)).toMatchObject({ event: 'error', data: { code: 'llm_unavailable' } });
      expect(sim.stats().faults?.cut).toBeGreaterThan(0);
      await expectStored(troupe, stream, 'a question whose answer is cut');
      await noCallLeft(sim);
    });
  });

  test('a slow first byte within the deadline still completes', async () => {
    await withFaultySim(
      ['--first-byte-delay-ms', '800'],
      { LLM_TIMEOUT: '20000' },
      async ({ sim, troupe }) => {
        const stream = await chat(troupe, 'patience');
        expect(terminal(stream).event).toBe('done');
        await noCallLeft(sim);
      },
    );
  });

  test('a provider that accepts and never answers: llm_timeout at LLM_TIMEOUT, and the call is aborted', async () => {
    await withFaultySim(['--hang-percent', '100'], { LLM_TIMEOUT: '5000' }, async ({ sim, troupe }) => {
      const stream = await chat(troupe, 'hello?');
      expect(terminal(stream)).toMatchObject({ event: 'error', data: { code: 'llm_timeout' } });
      expect(sim.stats().faults?.hung).toBeGreaterThan(0);
      await noCallLeft(sim);
      await expectStored(troupe, stream, 'hello?');
    });
  });

  test('a 429 storm with Retry-After: Troupe waits as told, then ends with a coded error, not a hang', async () => {
    await withFaultySim(
      ['--storm-429-percent', '100', '--retry-after-s', '1'],
      { LLM_TIMEOUT: '5000' },
      async ({ sim, troupe }) => {
        const stream = await chat(troupe, 'rate limited?');
        const last = terminal(stream);
        expect(last.event).toBe('error');
        expect(['provider_rate_limited', 'llm_timeout', 'queue_timeout']).toContain(last.data.code);
        // Retry-After 1 s within a 5 s deadline: a handful of attempts, not a tight loop.
        expect(sim.stats().faults?.injected429).toBeGreaterThanOrEqual(1);
        expect(sim.stats().faults?.injected429).toBeLessThanOrEqual(7);
        await noCallLeft(sim);
      },
    );
  });
});

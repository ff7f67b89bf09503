/**
 * Micro-benchmark of the scheduler's own overhead (issue 3): a fake provider that answers at once,
 * the real LlmScheduler (queue, limiter, breaker, retry loop) on the system clock.
 *   npx tsx scripts/bench-scheduler.ts
 * Prints enqueue-to-dispatch latency (complete() called → provider called) with free capacity, and
 * dispatch decisions per second draining 10,000 queued calls.
 */
import { performance } from 'node:perf_hooks';
import { systemClock } from '../api/clock';
import { AGENT_NAMES } from '../api/agents/agent-name';
import { createLlmScheduler } from '../api/llm/create-llm-scheduler';
import type { CompletionResult, Provider } from '../api/llm/provider';
import { RequestQueue } from '../api/llm/request-queue';
import { InMemoryLimiter } from '../api/llm/limiter';
import { percentile } from '../api/llm/rolling-histogram';
import { testConfig } from '../config';

const answer: CompletionResult = {
  text: 'ok',
  toolCalls: [],
  usage: { promptTokens: 5, completionTokens: 5 },
  finishReason: 'stop',
};

class InstantProvider implements Provider {
  readonly name = 'instant';
  lastCalledAt = 0;
  complete(): Promise<CompletionResult> {
    this.lastCalledAt = performance.now();
    return Promise.resolve(answer);
  }
}

function scheduler(provider: Provider, concurrency: number) {
  const config = testConfig({
    LLM_MAX_CONCURRENT: String(concurrency),
    LLM_MAX_RPM: '10000000',
    LLM_QUEUE_MAX: '1000000',
  });
  return createLlmScheduler({ config, provider, clock: systemClock, burstWindowMs: 0 });
}

const request = { messages: [{ role: 'user' as const, content: 'bench' }] };

async function enqueueToDispatch(iterations: number): Promise<number[]> {
  const provider = new InstantProvider();
  const llm = scheduler(provider, 1000);
  const signal = new AbortController().signal;
  const samples: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const start = performance.now();
    await llm.complete(
      { agentType: AGENT_NAMES[i % 4], userId: `u${i % 50}`, conversationId: 'c' },
      request,
      { signal },
    );
    samples.push(provider.lastCalledAt - start);
  }
  llm.close();
  return samples.sort((a, b) => a - b);
}

async function drainQueued(count: number, concurrency: number): Promise<number> {
  const llm = scheduler(new InstantProvider(), concurrency);
  llm.pause();
  const calls: Promise<unknown>[] = [];
  for (let i = 0; i < count; i++) {
    calls.push(
      // One signal per call, as each chat run has its own (a shared signal would make every
      // listener removal O(listeners), which measures EventTarget rather than the scheduler).
      llm.complete(
        { agentType: AGENT_NAMES[i % 4], userId: `u${i % 100}`, conversationId: `c${i}` },
        request,
        {
          signal: new AbortController().signal,
        },
      ),
    );
  }
  const start = performance.now();
  llm.resume();
  await Promise.all(calls);
  const elapsed = performance.now() - start;
  llm.close();
  return count / (elapsed / 1000);
}

/** The queue alone (no provider, no promises beyond the slot): decisions the dispatcher can make. */
async function queueOnly(count: number): Promise<number> {
  const limiter = new InMemoryLimiter({
    clock: systemClock,
    maxConcurrent: 1,
    maxRpm: 10_000_000,
    maxTpm: 0,
    burstWindowMs: 0,
  });
  const queue = new RequestQueue({
    clock: systemClock,
    limiter,
    queueMax: 1_000_000,
    priorityOrder: AGENT_NAMES,
  });
  queue.pause();
  const slots = [];
  for (let i = 0; i < count; i++) {
    slots.push(
      queue
        .acquire(
          {
            agentType: AGENT_NAMES[i % 4],
            userId: `u${i % 100}`,
            conversationId: 'c',
            estimatedTokens: 1,
            deadline: Date.now() + 600_000,
          },
          new AbortController().signal,
        )
        // Release at once: each release triggers the next dispatch decision.
        .then((slot) => slot.release()),
    );
  }
  const start = performance.now();
  queue.resume();
  await Promise.all(slots);
  return count / ((performance.now() - start) / 1000);
}

async function main(): Promise<void> {
  await enqueueToDispatch(2_000); // warm-up
  const samples = await enqueueToDispatch(20_000);
  console.log('enqueue-to-dispatch with free capacity (20,000 sequential calls):');
  console.log(
    `  p50 ${percentile(samples, 0.5).toFixed(4)} ms   p99 ${percentile(samples, 0.99).toFixed(4)} ms   max ${samples[samples.length - 1].toFixed(3)} ms`,
  );
  await drainQueued(10_000, 100); // warm-up
  const full = await drainQueued(10_000, 100);
  console.log(
    `draining 10,000 queued calls through the whole scheduler (C=100): ${Math.round(full).toLocaleString('en')} dispatches/s`,
  );
  await queueOnly(10_000);
  const bare = await queueOnly(10_000);
  console.log(
    `queue alone, 10,000 queued, C=1 (every release → one decision): ${Math.round(bare).toLocaleString('en')} decisions/s`,
  );
}

void main();

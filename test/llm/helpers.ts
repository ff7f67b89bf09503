import type { ManualClock } from '../../api/clock';
import { testConfig } from '../../config';
import type {
  CompletionOptions,
  CompletionRequest,
  CompletionResult,
  Provider,
} from '../../api/llm/provider';
import type { LlmCallMeta } from '../../api/llm/llm-gateway';
import type { AgentName } from '../../api/agents/agent-name';

/** Lets every pending promise continuation run (a macrotask turn drains the microtask queue). */
export function drain(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Advances the manual clock in steps, draining continuations after each (no wall-clock sleeps). */
export async function advance(clock: ManualClock, ms: number, step = ms): Promise<void> {
  let remaining = ms;
  await drain();
  while (remaining > 0) {
    const delta = Math.min(step, remaining);
    clock.advance(delta);
    remaining -= delta;
    await drain();
  }
}

export function llmConfig(overrides: Record<string, string> = {}) {
  return testConfig(overrides);
}

export interface RecordedCall {
  request: CompletionRequest;
  signal: AbortSignal;
  startedAt: number;
  delta(text: string): void;
  /** A thinking model's reasoning piece (also a byte of the response). */
  reasoning(text: string): void;
  /** Some byte of the response arrived (a chunk of any kind). */
  progress(): void;
  /** The provider reported its usage so far (Ark's chunk_include_usage). */
  usage(usage: { promptTokens: number; completionTokens: number }): void;
  resolve(result?: Partial<CompletionResult>): void;
  reject(error: unknown): void;
  settled: boolean;
}

/** A provider whose calls the test finishes by hand, or after `latencyMs` on the clock when set. */
export class FakeProvider implements Provider {
  readonly name = 'fake';
  readonly calls: RecordedCall[] = [];
  latencyMs: number | undefined;
  /** Failures thrown by the next calls, in order, instead of answering. */
  readonly failures: unknown[] = [];
  /**
   * Reject an aborted call as real SDKs do (an AbortError whose `cause` is the signal's reason)
   * instead of with the reason itself.
   */
  abortAsAbortError = false;
  /** Set before building the scheduler to have its calls timed on their first byte. */
  reportsFirstByte = false;

  constructor(private readonly clock: ManualClock) {}

  complete(request: CompletionRequest, options: CompletionOptions): Promise<CompletionResult> {
    return new Promise<CompletionResult>((resolve, reject) => {
      const call: RecordedCall = {
        request,
        signal: options.signal,
        startedAt: this.clock.now(),
        settled: false,
        delta: (text) => {
          options.onProgress?.();
          options.onDelta?.(text);
        },
        reasoning: (text) => {
          options.onProgress?.();
          options.onReasoning?.(text);
        },
        progress: () => options.onProgress?.(),
        usage: (usage) => options.onUsage?.(usage),
        resolve: (result = {}) => {
          if (call.settled) return;
          call.settled = true;
          resolve({
            text: 'ok',
            toolCalls: [],
            usage: { promptTokens: 10, completionTokens: 5 },
            finishReason: 'stop',
            ...result,
          });
        },
        reject: (error) => {
          if (call.settled) return;
          call.settled = true;
          reject(error);
        },
      };
      this.calls.push(call);
      options.signal.addEventListener('abort', () => call.reject(this.abortError(options.signal)), {
        once: true,
      });
      const failure = this.failures.shift();
      if (failure !== undefined) {
        call.reject(failure);
        return;
      }
      if (this.latencyMs !== undefined) this.clock.setTimeout(() => call.resolve(), this.latencyMs);
    });
  }

  private abortError(signal: AbortSignal): unknown {
    if (!this.abortAsAbortError) return signal.reason;
    return Object.assign(new Error('This operation was aborted', { cause: signal.reason }), {
      name: 'AbortError',
    });
  }

  get open(): RecordedCall[] {
    return this.calls.filter((call) => !call.settled);
  }
}

export function meta(agentType: AgentName, userId = 'u1', extra: Partial<LlmCallMeta> = {}): LlmCallMeta {
  return { agentType, userId, conversationId: `c-${userId}`, ...extra };
}

export const request: CompletionRequest = { messages: [{ role: 'user', content: 'hello' }] };

/** The largest number of `starts` inside any half-open window [t, t + windowMs). */
export function maxInWindow(starts: readonly number[], windowMs: number): number {
  const sorted = [...starts].sort((a, b) => a - b);
  let max = 0;
  let low = 0;
  for (let high = 0; high < sorted.length; high++) {
    while (sorted[high] - sorted[low] >= windowMs) low++;
    max = Math.max(max, high - low + 1);
  }
  return max;
}

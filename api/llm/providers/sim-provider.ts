import { systemClock } from '../../clock';
import type { Clock, TimerHandle } from '../../clock';
import type { CompletionOptions, CompletionRequest, CompletionResult, Provider } from '../provider';
import { estimateTokens } from '../provider';
import { simulateCompletion, simulateReasoning } from '../sim/sim-model';
import { providerAbortError } from './abort-error';

export interface SimProviderOptions {
  /** Delay before the first token, ms (SIM_LATENCY_MS). */
  latencyMs?: number;
  /** Stream chunks (words) per second after the first (SIM_TOKENS_PER_S). */
  tokensPerSecond?: number;
  clock?: Clock;
  /**
   * Shortest gap between two timer wake-ups, ms: at high speeds several chunks go out per wake-up
   * instead of one timer per word, which keeps thousands of concurrent simulated calls cheap.
   */
  minTickMs?: number;
  /** Keep every request in `calls` (for tests that assert what the model was sent). */
  record?: boolean;
  /**
   * Fault injection: called when a call would start streaming (after the first-token latency);
   * an error returned is thrown instead of answering. `callNumber` counts from 1.
   */
  fault?: (request: CompletionRequest, callNumber: number) => Error | undefined;
  /**
   * A thinking model (LLM_THINKING=enabled): each answer is preceded by reasoning streamed to
   * `onReasoning`, paced like the text. A function decides per request (sim-llm: the request's
   * `thinking` field).
   */
  thinking?: boolean | ((request: CompletionRequest) => boolean);
}

export interface SimProviderStats {
  started: number;
  completed: number;
  aborted: number;
  failed: number;
  inFlight: number;
  maxInFlight: number;
}

/**
 * The in-process simulated provider (`LLM_PROVIDER=sim`): the sim model's answer, paced like a real
 * provider (first-token latency, then tokens per second) on an injected clock, abortable at any
 * point, with call counters for tests.
 */
export class SimProvider implements Provider {
  readonly name = 'sim';
  /** Requests received, in order, when `record` is set. */
  readonly calls: CompletionRequest[] = [];
  private latencyMs: number;
  private intervalMs: number;
  private readonly minTickMs: number;
  private readonly clock: Clock;
  private readonly options: SimProviderOptions;
  private counters: SimProviderStats = {
    started: 0,
    completed: 0,
    aborted: 0,
    failed: 0,
    inFlight: 0,
    maxInFlight: 0,
  };

  constructor(options: SimProviderOptions = {}) {
    this.options = options;
    this.latencyMs = Math.max(0, options.latencyMs ?? 300);
    this.intervalMs = 1000 / Math.max(1e-6, options.tokensPerSecond ?? 200);
    this.minTickMs = Math.max(0, options.minTickMs ?? 10);
    this.clock = options.clock ?? systemClock;
  }

  /**
   * Changes the pace from now on, calls in flight included (benchmarks: a provider that turns 4×
   * slower, then 4× faster, mid-run).
   */
  setPace(pace: { latencyMs?: number; tokensPerSecond?: number }): void {
    if (pace.latencyMs !== undefined) this.latencyMs = Math.max(0, pace.latencyMs);
    if (pace.tokensPerSecond !== undefined) this.intervalMs = 1000 / Math.max(1e-6, pace.tokensPerSecond);
  }

  /** Call counters; `inFlight` is live, the others count since start or the last reset. */
  stats(): SimProviderStats {
    return { ...this.counters };
  }

  resetStats(): void {
    this.counters = {
      ...this.counters,
      started: 0,
      completed: 0,
      aborted: 0,
      failed: 0,
      maxInFlight: this.counters.inFlight,
    };
    this.calls.length = 0;
  }

  complete(request: CompletionRequest, options: CompletionOptions): Promise<CompletionResult> {
    const { signal, onDelta, onReasoning, onProgress } = options;
    if (signal.aborted) return Promise.reject(providerAbortError(signal));
    const output = simulateCompletion(request);
    const thinking = this.options.thinking;
    const thinks = typeof thinking === 'function' ? thinking(request) : thinking === true;
    const reasoningChunks = thinks ? simulateReasoning(output) : [];
    // Reasoning first, then the answer: one stream of pieces on the same pace.
    const pieces = [...reasoningChunks, ...output.chunks];
    const counters = this.counters;
    counters.started++;
    counters.inFlight++;
    counters.maxInFlight = Math.max(counters.maxInFlight, counters.inFlight);
    const callNumber = counters.started;
    if (this.options.record) this.calls.push(request);

    return new Promise<CompletionResult>((resolve, reject) => {
      const clock = this.clock;
      const startedAt = clock.now();
      let timer: TimerHandle | undefined;
      let settled = false;
      let index = 0;

      const settle = (outcome: 'completed' | 'aborted' | 'failed', finish: () => void) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        if (timer !== undefined) clock.clearTimeout(timer);
        timer = undefined;
        counters.inFlight--;
        counters[outcome]++;
        finish();
      };
      const onAbort = () => settle('aborted', () => reject(providerAbortError(signal)));

      const tick = () => {
        timer = undefined;
        if (index === 0) {
          const error = this.options.fault?.(request, callNumber);
          if (error) return settle('failed', () => reject(error));
        }
        const elapsed = clock.now() - startedAt;
        try {
          while (index < pieces.length && this.latencyMs + index * this.intervalMs <= elapsed + 1e-9) {
            // (Not `onDelta?.(chunks[index++])`: optional calls skip evaluating their arguments.)
            const thought = index < reasoningChunks.length;
            const chunk = pieces[index++];
            onProgress?.();
            if (thought) onReasoning?.(chunk);
            else onDelta?.(chunk);
            // A listener may abort from inside onDelta (its client left): stop at once.
            if (settled) return;
          }
        } catch (error) {
          return settle('failed', () => reject(error));
        }
        if (index >= pieces.length) {
          const reasoning = reasoningChunks.join('');
          // Reasoning tokens are completion tokens, as providers count them (and TPM does).
          const reasoningTokens = reasoning === '' ? 0 : estimateTokens(reasoning);
          return settle('completed', () =>
            resolve({
              text: output.text,
              toolCalls: output.toolCalls,
              usage:
                reasoningTokens > 0
                  ? {
                      ...output.usage,
                      completionTokens: output.usage.completionTokens + reasoningTokens,
                      reasoningTokens,
                    }
                  : output.usage,
              finishReason: output.finishReason,
              ...(reasoning !== '' ? { reasoning } : {}),
            }),
          );
        }
        const dueAt = startedAt + this.latencyMs + index * this.intervalMs;
        timer = clock.setTimeout(tick, Math.max(dueAt - clock.now(), this.minTickMs));
      };

      signal.addEventListener('abort', onAbort, { once: true });
      timer = clock.setTimeout(tick, this.latencyMs);
    });
  }
}

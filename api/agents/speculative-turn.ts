import { AppError } from '../errors';
import type { AgentResult, RunContext } from './base-agent';
import { HeldEvents } from './held-events';

/** What became of speculative drafts, for /metrics: `failed` = failed before it was shown, rerun. */
export type SpeculationEvent = 'started' | 'used' | 'withdrawn' | 'failed';

export interface SpeculationMetrics {
  recordSpeculation(event: SpeculationEvent): void;
}

/** An agent turn started before it is known to be needed (the Reporter while the Critic reviews). */
export interface SpeculativeTurn {
  /**
   * The turn is wanted: its held events go out and the result is awaited. Undefined when the turn
   * already failed before anything was shown (the caller then runs it afresh, as sequential mode would).
   */
  confirm(): Promise<AgentResult | undefined>;
  /** The turn is not wanted: its provider call is cancelled at once and nothing it emitted is shown. */
  withdraw(): void;
}

type Settled = { state: 'running' } | { state: 'done' } | { state: 'failed'; error: unknown };

/**
 * Starts `turn` on its own AbortController, linked to the run's signal (the run ending cancels it,
 * withdrawing it does not end the run), with its events held back until `confirm`.
 */
export function startSpeculativeTurn(
  context: RunContext,
  turn: (context: RunContext) => Promise<AgentResult>,
): SpeculativeTurn {
  const controller = new AbortController();
  const onRunAbort = () => controller.abort(context.signal.reason);
  context.signal.addEventListener('abort', onRunAbort, { once: true });
  const held = new HeldEvents(context.emit);
  let settled: Settled = { state: 'running' };
  const result = turn({ ...context, signal: controller.signal, emit: held.emit });
  result.then(
    () => (settled = { state: 'done' }),
    (error: unknown) => (settled = { state: 'failed', error }),
  );
  void result.finally(() => context.signal.removeEventListener('abort', onRunAbort)).catch(() => undefined);

  return {
    async confirm() {
      if (settled.state === 'failed' && !context.signal.aborted) {
        held.discard();
        return undefined;
      }
      held.release();
      return result;
    },
    withdraw() {
      held.discard();
      controller.abort(new AppError('cancelled', 'The speculative turn was withdrawn'));
    },
  };
}

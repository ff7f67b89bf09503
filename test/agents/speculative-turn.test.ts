import type { AgentResult, RunContext } from '../../api/agents/base-agent';
import { startSpeculativeTurn } from '../../api/agents/speculative-turn';
import { AppError } from '../../api/errors';
import { drain } from '../llm/helpers';

const result: AgentResult = {
  agent: 'reporter',
  text: 'the answer',
  usage: { promptTokens: 1, completionTokens: 1 },
  waitMs: 0,
  processMs: 0,
  cached: false,
  toolOutcomes: [],
};

function runContext() {
  const controller = new AbortController();
  const events: string[] = [];
  const context: RunContext = {
    runId: 'r1',
    userId: 'u1',
    conversationId: 'c1',
    signal: controller.signal,
    emit: (event, data) => events.push(`${event}:${(data as { text?: string }).text ?? ''}`),
  };
  return { context, controller, events };
}

/** A turn the test drives: it emits, then finishes or fails when told; it sees its own signal. */
function manualTurn() {
  const turn: {
    signal?: AbortSignal;
    emit?: RunContext['emit'];
    finish?: () => void;
    fail?: (error: unknown) => void;
  } = {};
  const start = (context: RunContext) =>
    new Promise<AgentResult>((resolve, reject) => {
      turn.signal = context.signal;
      turn.emit = context.emit;
      context.emit('agent_start', { agent: 'reporter' });
      turn.finish = () => resolve(result);
      turn.fail = reject;
      context.signal.addEventListener('abort', () => reject(context.signal.reason), { once: true });
    });
  return { turn, start };
}

describe('startSpeculativeTurn', () => {
  test('holds events until confirmed, then sends them in order and lets later ones through', async () => {
    const { context, events } = runContext();
    const { turn, start } = manualTurn();
    const draft = startSpeculativeTurn(context, start);
    turn.emit!('delta', { agent: 'reporter', text: 'a' });
    expect(events).toEqual([]);
    const confirmed = draft.confirm();
    expect(events).toEqual(['agent_start:', 'delta:a']);
    turn.emit!('delta', { agent: 'reporter', text: 'b' });
    expect(events).toEqual(['agent_start:', 'delta:a', 'delta:b']);
    turn.finish!();
    expect(await confirmed).toBe(result);
  });

  test('withdraw aborts its own signal at once, shows nothing and leaves the run alone', async () => {
    const { context, events } = runContext();
    const { turn, start } = manualTurn();
    const draft = startSpeculativeTurn(context, start);
    turn.emit!('delta', { agent: 'reporter', text: 'withdrawn text' });
    draft.withdraw();
    expect(turn.signal!.aborted).toBe(true);
    expect(context.signal.aborted).toBe(false);
    turn.emit!('delta', { agent: 'reporter', text: 'late' });
    expect(events).toEqual([]);
  });

  test('the run ending cancels the draft', () => {
    const { context, controller } = runContext();
    const { turn, start } = manualTurn();
    startSpeculativeTurn(context, start);
    controller.abort(new AppError('cancelled'));
    expect(turn.signal!.aborted).toBe(true);
  });

  test('a draft that failed before it was shown is dropped: confirm gives undefined, so the caller reruns it', async () => {
    const { context, events } = runContext();
    const { turn, start } = manualTurn();
    const draft = startSpeculativeTurn(context, start);
    turn.fail!(new AppError('llm_timeout'));
    await drain();
    expect(await draft.confirm()).toBeUndefined();
    expect(events).toEqual([]);
  });

  test('a failure after it was shown is the turn’s failure, as in sequential mode', async () => {
    const { context } = runContext();
    const { turn, start } = manualTurn();
    const draft = startSpeculativeTurn(context, start);
    const confirmed = draft.confirm();
    turn.fail!(new AppError('llm_unavailable'));
    await expect(confirmed).rejects.toMatchObject({ code: 'llm_unavailable' });
  });
});

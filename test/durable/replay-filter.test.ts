import { ReplayFilter } from '../../api/agents/replay-filter';
import type { RunEvent, RunEventMap, RunEventName } from '../../api/streaming/run-events';

type Sent = { event: RunEventName; data: unknown };

function filterOver(tail: Array<Omit<RunEvent, 'id'>>) {
  const sent: Sent[] = [];
  const records = tail.map((record, index) => ({ id: 40 + index, ...record })) as RunEvent[];
  const filter = new ReplayFilter(records, <K extends RunEventName>(event: K, data: RunEventMap[K]) => {
    sent.push({ event, data });
  });
  return { sent, emit: filter.emit };
}

const usage = { promptTokens: 1, completionTokens: 1 };

describe('ReplayFilter (the step an adopter makes again)', () => {
  test('a repeat of what was shown is not sent again; only the new text goes out, even when it is chunked differently', () => {
    const { sent, emit } = filterOver([
      { event: 'agent_start', data: { agent: 'planner' } },
      { event: 'delta', data: { agent: 'planner', text: 'Step one, ' } },
      { event: 'delta', data: { agent: 'planner', text: 'step tw' } },
    ]);
    emit('agent_start', { agent: 'planner' });
    emit('delta', { agent: 'planner', text: 'Step ' });
    emit('delta', { agent: 'planner', text: 'one, step two' });
    emit('delta', { agent: 'planner', text: ' and three.' });
    emit('agent_end', { agent: 'planner', usage, waitMs: 0, processMs: 1, cached: false });
    expect(sent).toEqual([
      { event: 'delta', data: { agent: 'planner', text: 'o' } },
      { event: 'delta', data: { agent: 'planner', text: ' and three.' } },
      { event: 'agent_end', data: { agent: 'planner', usage, waitMs: 0, processMs: 1, cached: false } },
    ]);
  });

  test('new output that departs from what was shown starts the agent over visibly: agent_start again, the text so far, the rest', () => {
    const { sent, emit } = filterOver([
      { event: 'agent_start', data: { agent: 'critic' } },
      { event: 'delta', data: { agent: 'critic', text: 'Approve: the plan' } },
    ]);
    emit('agent_start', { agent: 'critic' });
    emit('delta', { agent: 'critic', text: 'Approve' });
    emit('delta', { agent: 'critic', text: ' it, though' });
    expect(sent).toEqual([
      { event: 'agent_start', data: { agent: 'critic' } },
      { event: 'delta', data: { agent: 'critic', text: 'Approve' } },
      { event: 'delta', data: { agent: 'critic', text: ' it, though' } },
    ]);
  });

  test('with nothing shown after the checkpoint, every event goes out as is', () => {
    const { sent, emit } = filterOver([
      { event: 'queued', data: { position: 1, estimatedWaitMs: null, paused: true } },
    ]);
    emit('agent_start', { agent: 'reporter' });
    emit('delta', { agent: 'reporter', text: 'Hi' });
    expect(sent.map((record) => record.event)).toEqual(['agent_start', 'delta']);
  });
});

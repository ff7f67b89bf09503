import { Run } from '../../api/streaming/run';

/** The hold durable chats put on a run while its handover is agreed (api/agents/durable-runs.ts). */
describe('Run.holdDelivery', () => {
  function followed() {
    const run = new Run('c', 'u', 100);
    const seen: number[] = [];
    run.subscribe((record) => seen.push(record.id));
    return { run, seen };
  }

  test('held events are logged at once and reach the listeners on release, in order', () => {
    const { run, seen } = followed();
    run.emit('agent_start', { agent: 'host' });
    const release = run.holdDelivery();
    run.emit('delta', { agent: 'host', text: 'a' });
    run.emit('delta', { agent: 'host', text: 'b' });
    expect(seen).toEqual([1]);
    expect(run.events().map((record) => record.id)).toEqual([1, 2, 3]);
    release();
    run.emit('delta', { agent: 'host', text: 'c' });
    expect(seen).toEqual([1, 2, 3, 4]);
  });

  test('a run handed over while held never shows the held events: the adopter makes them', () => {
    const { run, seen } = followed();
    run.emit('agent_start', { agent: 'host' });
    const release = run.holdDelivery();
    run.emit('delta', { agent: 'host', text: 'a' });
    run.handOver();
    release();
    expect(seen).toEqual([1]);
  });
});

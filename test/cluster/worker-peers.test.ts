import { ManualClock } from '../../api/clock';
import type { ControlCommand } from '../../api/cluster/cluster-control';
import type { InstanceFigures } from '../../api/cluster/instance-registry';
import { WorkerPeers, type PrimaryChannel, type WorkerMessage } from '../../api/cluster/worker-peers';

/** A worker's side of the primary's relay, over a fake IPC channel and an injected clock. */
function fakeChannel() {
  const sent: WorkerMessage[] = [];
  let listener: ((message: unknown) => void) | undefined;
  const channel: PrimaryChannel = {
    send: (message) => sent.push(message),
    on: (_event, handler) => (listener = handler),
    off: () => (listener = undefined),
  };
  return { channel, sent, deliver: (message: unknown) => listener?.(message), listening: () => !!listener };
}

const figures = () => ({
  queueLength: 2,
  activeRequests: 1,
  admittedChats: 1,
  paused: false,
  totalProcessed: 5,
  totalSuccess: 5,
  totalFailed: 0,
  totalTimeout: 0,
  limiter: 'local',
});

describe('WorkerPeers (--workers N without Redis)', () => {
  test('publishes its figures every heartbeat, lists the others the primary relays, applies their commands', () => {
    const clock = new ManualClock(1_000);
    const { channel, sent, deliver, listening } = fakeChannel();
    const applied: ControlCommand[] = [];
    const peers = new WorkerPeers({
      channel,
      clock,
      instanceId: 'worker-b',
      host: 'box',
      heartbeatMs: 2_000,
      apply: (command) => applied.push(command),
    });
    peers.start(figures);
    expect(sent).toEqual([
      { troupe: 'worker-figures', figures: expect.objectContaining({ id: 'worker-b', queueLength: 2 }) },
    ]);
    clock.advance(2_000);
    expect(sent).toHaveLength(2);

    const other = { ...peers.self(), id: 'worker-a', pid: 1 } as InstanceFigures;
    // The primary's list holds this worker too (its last beat): the live self replaces it.
    deliver({ troupe: 'worker-instances', instances: [other, { ...peers.self(), queueLength: 99 }] });
    expect(peers.instances().map((instance) => [instance.id, instance.queueLength])).toEqual([
      ['worker-a', 2],
      ['worker-b', 2],
    ]);
    deliver({ troupe: 'worker-command', command: { command: 'pause', refuseNewChats: false } });
    deliver({ something: 'else' });
    expect(applied).toEqual([{ command: 'pause', refuseNewChats: false }]);

    void peers.broadcast({ command: 'resume' });
    expect(sent.at(-1)).toEqual({ troupe: 'worker-command', command: { command: 'resume' } });

    peers.close();
    expect(listening()).toBe(false);
    clock.advance(10_000);
    expect(sent.filter((message) => message.troupe === 'worker-figures')).toHaveLength(2);
  });
});

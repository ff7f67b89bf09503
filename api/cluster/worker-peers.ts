import type { Clock, TimerHandle } from '../clock';
import type { ControlCommand } from './cluster-control';
import { emptyFigures, type InstanceFigures, type LiveFigures } from './instance-registry';

/**
 * `npm start -- --workers N` without REDIS_URL: the workers share no Redis, so the node:cluster
 * primary relays what operators need to see and do as one — each worker's figures (GET
 * /api/queue/status `instances`, the dashboard's instance list, whichever worker answers) and the
 * pause / resume / clear commands. The quota is NOT shared this way: each worker enforces the
 * limits alone (the primary warns at start), so its queue figures stay its own.
 *
 * Messages (IPC, JSON): worker → primary `{troupe: 'worker-figures', figures}` and
 * `{troupe: 'worker-command', command}`; primary → worker `{troupe: 'worker-instances', instances}`
 * and `{troupe: 'worker-command', command}` (to every worker but the sender).
 */
export type WorkerMessage =
  | { troupe: 'worker-figures'; figures: InstanceFigures }
  | { troupe: 'worker-command'; command: ControlCommand }
  | { troupe: 'worker-instances'; instances: InstanceFigures[] };

/** The IPC channel to the primary (the worker's `process`). */
export interface PrimaryChannel {
  send(message: WorkerMessage): unknown;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  off(event: 'message', listener: (message: unknown) => void): unknown;
}

export function isWorkerMessage(message: unknown): message is WorkerMessage {
  return (
    typeof message === 'object' &&
    message !== null &&
    typeof (message as { troupe?: unknown }).troupe === 'string' &&
    (message as { troupe: string }).troupe.startsWith('worker-')
  );
}

export interface WorkerPeersOptions {
  channel: PrimaryChannel;
  clock: Clock;
  instanceId: string;
  host: string;
  /** Applies a command another worker's operator gave (the composition root wires the scheduler). */
  apply: (command: ControlCommand) => void;
  heartbeatMs?: number;
}

export class WorkerPeers {
  private readonly startedAt = new Date().toISOString();
  private readonly heartbeatMs: number;
  private known: InstanceFigures[] = [];
  private figures?: () => LiveFigures;
  private timer?: TimerHandle;
  private readonly onMessage = (message: unknown) => this.receive(message);

  constructor(private readonly options: WorkerPeersOptions) {
    this.heartbeatMs = options.heartbeatMs ?? 2_000;
  }

  get instanceId(): string {
    return this.options.instanceId;
  }

  /** Publishes this worker's figures now and every heartbeat; listens for the others'. */
  start(figures: () => LiveFigures): void {
    this.figures = figures;
    this.options.channel.on('message', this.onMessage);
    this.beat();
  }

  /** This worker's figures now. */
  self(): InstanceFigures {
    return {
      id: this.options.instanceId,
      pid: process.pid,
      host: this.options.host,
      startedAt: this.startedAt,
      updatedAt: new Date(this.options.clock.now()).toISOString(),
      ...(this.figures?.() ?? { ...emptyFigures(), limiter: 'local' }),
    };
  }

  /** Every worker the primary last listed, this one live. */
  instances(): InstanceFigures[] {
    return [...this.known.filter((instance) => instance.id !== this.options.instanceId), this.self()];
  }

  /** Sends the command to the other workers through the primary; resolves how many there are. */
  broadcast(command: ControlCommand): Promise<number> {
    this.options.channel.send({ troupe: 'worker-command', command });
    return Promise.resolve(this.instances().length - 1);
  }

  close(): void {
    if (this.timer) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.options.channel.off('message', this.onMessage);
  }

  private beat(): void {
    try {
      this.options.channel.send({ troupe: 'worker-figures', figures: this.self() });
    } catch {
      // The primary is gone (shutting down): nothing to tell.
    }
    this.timer = this.options.clock.setTimeout(() => this.beat(), this.heartbeatMs);
  }

  private receive(message: unknown): void {
    if (!isWorkerMessage(message)) return;
    if (message.troupe === 'worker-instances') this.known = message.instances;
    else if (message.troupe === 'worker-command') this.options.apply(message.command);
  }
}

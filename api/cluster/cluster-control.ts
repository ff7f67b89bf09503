import type Redis from 'ioredis';

/** An operator's command, applied on every instance. */
export type ControlCommand =
  { command: 'pause'; refuseNewChats: boolean } | { command: 'resume' } | { command: 'clear' };

export interface ClusterControlOptions {
  /** Publishes commands and keeps the pause flag (the main connection). */
  publisher: Redis;
  /** A connection of its own: a subscribed ioredis client can send nothing else. */
  subscriber: Redis;
  keyPrefix: string;
  instanceId: string;
  /** Applies a command on this instance (the composition root wires the scheduler). */
  apply: (command: ControlCommand) => void;
  onError?: (error: unknown) => void;
}

interface Envelope {
  origin: string;
  command: ControlCommand;
}

/**
 * Pause / resume / clear for the whole cluster over Redis pub/sub. The pause is also kept in a key,
 * so an instance that starts (or reconnects) while the cluster is paused pauses too.
 */
export class ClusterControl {
  private readonly channel: string;
  private readonly pausedKey: string;
  private readonly onMessage = (channel: string, message: string) => this.receive(channel, message);

  constructor(private readonly options: ClusterControlOptions) {
    this.channel = `${options.keyPrefix}control`;
    this.pausedKey = `${options.keyPrefix}paused`;
  }

  /** Subscribes and applies a pause in force; errors are reported, not thrown (Redis may be down). */
  async start(): Promise<void> {
    this.options.subscriber.on('message', this.onMessage);
    try {
      await this.options.subscriber.subscribe(this.channel);
      const paused = await this.options.publisher.get(this.pausedKey);
      if (paused) this.options.apply({ command: 'pause', refuseNewChats: paused === 'refuse' });
    } catch (error) {
      this.options.onError?.(error);
    }
  }

  /** Sends a command to the other instances (the caller applies it here). Resolves how many heard it. */
  async publish(command: ControlCommand): Promise<number> {
    if (command.command === 'pause')
      await this.options.publisher.set(this.pausedKey, command.refuseNewChats ? 'refuse' : 'hold');
    if (command.command === 'resume') await this.options.publisher.del(this.pausedKey);
    const envelope: Envelope = { origin: this.options.instanceId, command };
    return this.options.publisher.publish(this.channel, JSON.stringify(envelope));
  }

  async close(): Promise<void> {
    this.options.subscriber.off('message', this.onMessage);
    await this.options.subscriber.unsubscribe(this.channel).catch(() => undefined);
  }

  private receive(channel: string, message: string): void {
    if (channel !== this.channel) return;
    try {
      const envelope = JSON.parse(message) as Envelope;
      if (envelope.origin === this.options.instanceId) return;
      this.options.apply(envelope.command);
    } catch (error) {
      this.options.onError?.(error);
    }
  }
}

import { randomBytes } from 'node:crypto';
import os from 'node:os';
import type { Redis } from 'ioredis';
import type { Clock, TimerHandle } from '../clock';
import type { Logger } from '../logger';
import { LuaScript } from './lua-script';

const HEARTBEAT = new LuaScript('instance-heartbeat-1');
const ALIVE = new LuaScript('instance-alive-1');

export interface InstancePresenceOptions {
  client: Redis;
  keyPrefix: string;
  clock: Clock;
  logger: Logger;
  /** How often this instance renews its mark, ms (default 2000). */
  intervalMs?: number;
  /** How long a mark lasts: an instance killed with SIGKILL is known gone this long after (default 8000). */
  ttlMs?: number;
}

/** An id unique to this process: readable (host and pid) and never reused (random suffix). */
export function newInstanceId(): string {
  return `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

/**
 * Which instances are alive: each renews a mark in one Redis sorted set (score = alive-until by
 * Redis's clock), so a SIGKILLed instance is known gone within ttlMs. The run event log asks it
 * whether a run's owner still exists; the tool limits use the count for their fallback share.
 * (A small piece of the composition root until the shared quota's instance registry replaces it.)
 */
export class InstancePresence {
  private timer?: TimerHandle;
  private lastCount = 1;
  private closed = false;
  private readonly key: string;
  private readonly intervalMs: number;
  private readonly ttlMs: number;

  constructor(
    readonly instanceId: string,
    private readonly options: InstancePresenceOptions,
  ) {
    this.key = `${options.keyPrefix}instances`;
    this.intervalMs = options.intervalMs ?? 2000;
    this.ttlMs = options.ttlMs ?? 8000;
  }

  /** Starts renewing (the first renewal is awaited, so the instance is visible once start resolves). */
  async start(): Promise<void> {
    await this.beat();
    this.schedule();
  }

  /** Instances alive at the last renewal (1 until the first one succeeds). */
  instanceCount(): number {
    return this.lastCount;
  }

  /** Whether `instanceId` is alive; a Redis failure counts as alive (nothing is ended on a guess). */
  async isAlive(instanceId: string): Promise<boolean> {
    try {
      const alive = await ALIVE.run(this.options.client, [this.key], [instanceId]);
      return Number(alive) === 1;
    } catch {
      return true;
    }
  }

  /** Stops renewing and removes this instance's mark. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) this.options.clock.clearTimeout(this.timer);
    await this.options.client.zrem(this.key, this.instanceId).catch(() => undefined);
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = this.options.clock.setTimeout(() => {
      void this.beat().finally(() => this.schedule());
    }, this.intervalMs);
  }

  private async beat(): Promise<void> {
    try {
      const count = await HEARTBEAT.run(this.options.client, [this.key], [this.instanceId, this.ttlMs]);
      this.lastCount = Math.max(1, Number(count));
    } catch {
      // The connection logs the outage once; the count stays the last one known.
    }
  }
}

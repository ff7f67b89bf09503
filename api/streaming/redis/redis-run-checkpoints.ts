import type { Redis } from 'ioredis';
import type { ClaimedRun, RunCheckpoint, RunCheckpoints } from '../../agents/run-checkpoint';
import { withCommands } from '../../redis/redis-commands';
import type { RunEvent } from '../run-events';
import { decode } from './redis-run-event-log';

export interface RedisRunCheckpointsOptions {
  /** The run event log's connection: a checkpoint is written after the events it covers. */
  client: Redis;
  keyPrefix: string;
  instanceId: string;
  /** Expiry of a run's description while it lives (the run event log's, renewed by each save). */
  liveTtlMs?: number;
}

type StreamEntry = [id: string, fields: string[]];

/**
 * Durable runs' checkpoints and ownership in Redis, beside the run event log's keys: the
 * checkpoint is a field of the run's description `<prefix>run:<id>` (with `owner` and `epoch`, the
 * fencing token), and `<prefix>runs:durable` maps every unfinished durable run to its owner. Each
 * write is one Lua script that first checks the writer still owns the run.
 */
export class RedisRunCheckpoints implements RunCheckpoints {
  private readonly liveTtlMs: number;

  constructor(private readonly options: RedisRunCheckpointsOptions) {
    this.liveTtlMs = options.liveTtlMs ?? 3_600_000;
  }

  async save(checkpoint: RunCheckpoint, epoch: number): Promise<boolean> {
    const reply = await withCommands(this.options.client).saveRunCheckpoint(
      this.metaKey(checkpoint.runId),
      this.durableKey,
      checkpoint.runId,
      this.options.instanceId,
      epoch,
      JSON.stringify(checkpoint),
      this.liveTtlMs,
    );
    return Number(reply) === 1;
  }

  finish(runId: string, epoch: number): Promise<boolean> {
    return this.release(runId, epoch, 'finish');
  }

  /** The events are in the run's stream already. */
  handOver(runId: string, epoch: number): Promise<boolean> {
    return this.release(runId, epoch, 'handover');
  }

  async owners(): Promise<Map<string, string>> {
    return new Map(Object.entries(await this.options.client.hgetall(this.durableKey)));
  }

  async claim(runId: string, seenOwner: string): Promise<ClaimedRun | undefined> {
    const reply = await withCommands(this.options.client).claimRun(
      this.metaKey(runId),
      this.durableKey,
      runId,
      seenOwner,
      this.options.instanceId,
    );
    if (!reply) return undefined;
    const [epoch, json] = reply;
    // Read after the claim: the old owner's writes are refused from the claim on, so this is all.
    const entries = (await this.options.client.xrange(this.streamKey(runId), '-', '+')) as StreamEntry[];
    const events = entries
      .map(([id, fields]) => decode(id, fields))
      .filter((record): record is RunEvent => record !== undefined);
    return { checkpoint: JSON.parse(json) as RunCheckpoint, epoch: Number(epoch), events };
  }

  private async release(runId: string, epoch: number, how: 'finish' | 'handover'): Promise<boolean> {
    const reply = await withCommands(this.options.client).releaseRun(
      this.metaKey(runId),
      this.durableKey,
      runId,
      this.options.instanceId,
      epoch,
      how,
    );
    return Number(reply) === 1;
  }

  private get durableKey(): string {
    return `${this.options.keyPrefix}runs:durable`;
  }

  private metaKey(runId: string): string {
    return `${this.options.keyPrefix}run:${runId}`;
  }

  private streamKey(runId: string): string {
    return `${this.options.keyPrefix}run:${runId}:events`;
  }
}

import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Clock, TimerHandle } from '../../clock';
import type { Logger } from '../../logger';
import { withCommands } from '../../redis/redis-commands';
import { duplicateForBlocking } from '../../redis/redis-connection';
import type { Run } from '../run';
import { isTerminal, type RunEvent, type RunEventName } from '../run-events';
import type { FollowEnd, RunEventLog, SharedRun } from '../run-event-log';
import { attendanceChannel, encodeAttendance } from './attendance-message';

export interface RedisRunEventLogOptions {
  client: Redis;
  keyPrefix: string;
  /** This instance: the owner written into the runs it records. */
  instanceId: string;
  /** Whether a run's owner still exists (InstancePresence). */
  isAlive(instanceId: string): Promise<boolean>;
  clock: Clock;
  logger: Logger;
  /** How long a finished run stays replayable (RUN_LOG_RETENTION_MS). */
  retentionMs: number;
  /** Expiry of a live run's keys, renewed by each event (default 1 h: a run silent that long is gone). */
  liveTtlMs?: number;
  /** Stream length bound (RUN_LOG_MAX_EVENTS; trimmed approximately, oldest first). */
  maxEvents: number;
  /** Longest single XREAD BLOCK, ms: between two, the follower checks the owner and its signal (default 3000). */
  blockMs?: number;
  /** How often a follower tells the owner it is still there, ms (default 2000). */
  attendanceBeatMs?: number;
  /** A follower gives up after the log has failed this long, ms (default 10000). */
  unavailableAfterMs?: number;
  /**
   * Durable chats: how long a follower waits for a live instance to adopt a run whose owner is gone
   * before it gives up with owner_lost (default 30000). A run without a checkpoint is given up at once.
   */
  orphanWaitMs?: number;
  /**
   * A write of a run was refused because another instance owns it now (fencing): this process
   * must stop running it (durable chats).
   */
  onFenced?: (runId: string) => void;
  /**
   * Tokens wait this long to be appended together (SSE_TOKEN_BATCH_MS; 0: until the end of the
   * event-loop turn). A follower on another instance sees them that much later; nothing is lost
   * that a resume needs, as any other event appends them at once.
   */
  tokenBatchMs?: number;
}

/** The events appended together at the end of the batching window; any other goes at once. */
const BATCHED_EVENTS: ReadonlySet<RunEventName> = new Set(['delta', 'reasoning', 'queued']);

type StreamEntry = [id: string, fields: string[]];
type XreadReply = Array<[key: string, entries: StreamEntry[]]> | null;

/**
 * The run event log in Redis: per run, a stream `<prefix>run:<id>:events` whose entry ids are the
 * run's event ids (`<id>-0`), and a hash `<prefix>run:<id>` naming its user, conversation and
 * owner. The owner appends (one Lua script per event-loop turn for every run's events: XADD MAXLEN ~,
 * expiry renewed; the retention once terminal); any instance replays and follows with XREAD BLOCK on a connection of its own.
 * A failed append is logged once per outage and costs only cross-instance resume.
 */
export class RedisRunEventLog implements RunEventLog {
  private readonly blockMs: number;
  private readonly beatMs: number;
  private readonly liveTtlMs: number;
  private readonly unavailableAfterMs: number;
  private readonly orphanWaitMs: number;
  private appendFailing = false;
  /** Events not yet sent, in the order they happened (see `append`). */
  private readonly pending: Array<{ run: Run; record: RunEvent }> = [];
  private flushDeferred = false;
  private flushTimer?: TimerHandle;
  private readonly readers = new Set<Redis>();

  constructor(private readonly options: RedisRunEventLogOptions) {
    this.blockMs = options.blockMs ?? 3000;
    this.beatMs = options.attendanceBeatMs ?? 2000;
    this.liveTtlMs = options.liveTtlMs ?? 3_600_000;
    this.unavailableAfterMs = options.unavailableAfterMs ?? 10_000;
    this.orphanWaitMs = options.orphanWaitMs ?? 30_000;
  }

  record(run: Run): void {
    let described = false;
    run.tap((record) => {
      // Described at its first event, not at creation: a chat refused before it started leaves nothing.
      if (!described) {
        described = true;
        this.describe(run);
      }
      this.append(run, record);
    });
  }

  async find(runId: string): Promise<SharedRun | undefined> {
    const meta = await this.options.client.hgetall(this.metaKey(runId));
    // A durable run handed over and not yet adopted has no owner ("") for a moment.
    if (!meta.userId || (!meta.owner && meta.checkpoint === undefined)) return undefined;
    return {
      runId,
      userId: meta.userId,
      conversationId: meta.conversationId ?? '',
      ownerId: meta.owner ?? '',
      terminalId: meta.terminal ? Number(meta.terminal) : undefined,
      ...(meta.checkpoint !== undefined ? { durable: true } : {}),
    };
  }

  async follow(
    run: SharedRun,
    afterId: number,
    onEvent: (record: RunEvent) => void,
    signal: AbortSignal,
  ): Promise<FollowEnd> {
    const key = this.streamKey(run.runId);
    const reader = duplicateForBlocking(this.options.client);
    this.readers.add(reader);
    // Connected before the loop: a connection closed while still connecting can linger (ioredis).
    await reader.connect().catch(() => undefined);
    // Leaving ends the blocked XREAD at once: closing its connection is how a blocking read is aborted.
    const onAbort = () => reader.disconnect();
    signal.addEventListener('abort', onAbort, { once: true });
    let cursor = `${afterId}-0`;
    let lastId = afterId;
    let failingSince: number | undefined;
    let ownerId = run.ownerId;
    let orphanSince: number | undefined;
    try {
      while (!signal.aborted) {
        let reply: XreadReply;
        try {
          reply = (await reader.xread(
            'COUNT',
            500,
            'BLOCK',
            this.blockMs,
            'STREAMS',
            key,
            cursor,
          )) as XreadReply;
          failingSince = undefined;
        } catch (error) {
          if (signal.aborted) return 'aborted';
          failingSince ??= this.options.clock.now();
          if (this.options.clock.now() - failingSince >= this.unavailableAfterMs) {
            this.options.logger.warn({ runId: run.runId, error: String(error) }, 'run event log unreachable');
            return 'unavailable';
          }
          await this.pause(500, signal);
          continue;
        }
        if (!reply) {
          // Nothing new for blockMs: is anyone still going to write?
          if (ownerId === '' || !(await this.options.isAlive(ownerId))) {
            const current = await this.find(run.runId).catch(() => undefined);
            // A terminal written just before the owner left is still delivered by the next read.
            if (current?.terminalId !== undefined && current.terminalId > lastId) continue;
            // Durable chats: another instance adopts the run and goes on appending to this stream.
            if (current && current.ownerId !== ownerId) {
              ownerId = current.ownerId;
              orphanSince = undefined;
              continue;
            }
            if (!current?.durable) return 'owner_lost';
            orphanSince ??= this.options.clock.now();
            if (this.options.clock.now() - orphanSince >= this.orphanWaitMs) return 'owner_lost';
          }
          continue;
        }
        for (const [, entries] of reply) {
          for (const [entryId, fields] of entries) {
            cursor = entryId;
            const record = decode(entryId, fields);
            if (!record) continue;
            if (lastId < 1 && record.id > 1) onEvent(runEventOf(run));
            lastId = record.id;
            onEvent(record);
            if (isTerminal(record.event)) return 'terminal';
          }
        }
      }
      return 'aborted';
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.readers.delete(reader);
      reader.disconnect();
    }
  }

  attend(run: SharedRun, signal: AbortSignal): void {
    if (signal.aborted) return;
    const followerId = randomBytes(6).toString('hex');
    const channel = attendanceChannel(this.options.keyPrefix, run.ownerId);
    const say = (kind: 'attach' | 'detach') =>
      this.options.client
        .publish(channel, encodeAttendance(kind, run.runId, followerId))
        .catch(() => undefined);
    void say('attach');
    const beat = () => {
      if (signal.aborted) return;
      void say('attach');
      timer = this.options.clock.setTimeout(beat, this.beatMs);
    };
    let timer = this.options.clock.setTimeout(beat, this.beatMs);
    signal.addEventListener(
      'abort',
      () => {
        this.options.clock.clearTimeout(timer);
        void say('detach');
      },
      { once: true },
    );
  }

  async close(): Promise<void> {
    // Whatever this turn produced is sent before the owner closes the connection.
    this.flush();
    for (const reader of this.readers) reader.disconnect();
    this.readers.clear();
  }

  private describe(run: Run): void {
    const key = this.metaKey(run.id);
    // One connection keeps commands in order: the description is written before the first event.
    this.options.client
      .multi()
      .hset(key, {
        userId: run.userId,
        conversationId: run.conversationId,
        owner: this.options.instanceId,
        epoch: run.epoch,
      })
      .pexpire(key, this.liveTtlMs)
      .exec()
      .then(
        () => this.appendSucceeded(),
        (error: unknown) => this.appendFailed(error),
      );
  }

  /**
   * Tokens (`delta`, `reasoning`) and places in the line (`queued`: up to a hundred a turn while
   * the line moves) wait for the batching window (or the end of this event-loop turn), so that
   * everything the instance's runs streamed meanwhile is appended in one script: one command per
   * token was most of the run log's cost, and queued the shared quota's starts behind it in Redis;
   * one per turn was still ~280 scripts a second at 60 calls a second. Any other event
   * is appended at once with everything waiting before it, so a checkpoint written after an agent's
   * end on the same connection always follows that agent's events.
   */
  private append(run: Run, record: RunEvent): void {
    this.pending.push({ run, record });
    if (!BATCHED_EVENTS.has(record.event)) return this.flush();
    if (this.flushDeferred) return;
    this.flushDeferred = true;
    const windowMs = this.options.tokenBatchMs ?? 0;
    if (windowMs > 0) this.flushTimer = this.options.clock.setTimeout(() => this.flush(), windowMs);
    else this.options.clock.defer(() => this.flush());
  }

  private flush(): void {
    this.flushDeferred = false;
    if (this.flushTimer) this.options.clock.clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.pending.length === 0) return;
    const byRun = new Map<Run, RunEvent[]>();
    for (const { run, record } of this.pending.splice(0)) {
      const records = byRun.get(run);
      if (records) records.push(record);
      else byRun.set(run, [record]);
    }
    const keys: string[] = [];
    const args: Array<string | number> = [
      this.options.maxEvents,
      this.liveTtlMs,
      Math.max(1000, this.options.retentionMs),
      this.options.instanceId,
    ];
    for (const [run, records] of byRun) {
      keys.push(this.streamKey(run.id), this.metaKey(run.id));
      args.push(run.epoch, records.length);
      for (const record of records)
        args.push(record.id, record.event, JSON.stringify(record.data), isTerminal(record.event) ? '1' : '0');
    }
    const runs = [...byRun.keys()];
    withCommands(this.options.client)
      .appendRunEvents(keys.length, ...keys, ...args)
      .then(
        (replies) => {
          this.appendSucceeded();
          replies.forEach((reply, index) => {
            if (Number(reply) === -1) this.fenced(runs[index]);
          });
        },
        (error: unknown) => this.appendFailed(error),
      );
  }

  private fenced(run: Run): void {
    if (run.handedOver) return;
    this.options.logger.warn(
      { runId: run.id, epoch: run.epoch },
      'another instance owns this run now: this one stops running it',
    );
    this.options.onFenced?.(run.id);
  }

  private appendSucceeded(): void {
    if (!this.appendFailing) return;
    this.appendFailing = false;
    this.options.logger.info('run events reach Redis again: resume works on every instance');
  }

  private appendFailed(error: unknown): void {
    if (this.appendFailing) return;
    this.appendFailing = true;
    this.options.logger.warn(
      { error: error instanceof Error ? error.message : String(error) },
      'run events cannot be written to Redis: until it is back, a run resumes only on its own instance',
    );
  }

  private pause(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.options.clock.clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = this.options.clock.setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  private streamKey(runId: string): string {
    return `${this.options.keyPrefix}run:${runId}:events`;
  }

  private metaKey(runId: string): string {
    return `${this.options.keyPrefix}run:${runId}`;
  }
}

/** The stream entry `<id>-0 event <name> data <json>` as the run event it was. */
export function decode(entryId: string, fields: string[]): RunEvent | undefined {
  const values: Record<string, string> = {};
  for (let index = 0; index + 1 < fields.length; index += 2) values[fields[index]] = fields[index + 1];
  const id = Number(entryId.split('-')[0]);
  if (!Number.isSafeInteger(id) || !values.event || values.data === undefined) return undefined;
  try {
    return { id, event: values.event, data: JSON.parse(values.data) } as RunEvent;
  } catch {
    return undefined;
  }
}

/**
 * A replay from the start always begins with `run` (as the in-memory log's does); when trimming
 * dropped it from the stream, it is rebuilt from the run's description (its data is just that).
 */
function runEventOf(run: SharedRun): RunEvent {
  return { id: 1, event: 'run', data: { runId: run.runId, conversationId: run.conversationId } };
}

import type { Clock, TimerHandle } from '../clock';
import type { Logger } from '../logger';
import type { Run } from '../streaming/run';
import type { AgentResult } from './base-agent';
import type { ClaimedRun, InstanceLiveness, RunCheckpoint, RunCheckpoints } from './run-checkpoint';
import { StepJournal } from './step-journal';

export interface DurableRunsOptions {
  checkpoints: RunCheckpoints;
  liveness: InstanceLiveness;
  instanceId: string;
  clock: Clock;
  logger: Logger;
  /** How often this instance looks for runs whose owner is gone (RUN_ADOPT_INTERVAL_MS). */
  adoptIntervalMs: number;
}

interface Tracked {
  run: Run;
  checkpoint: RunCheckpoint;
  /** Its orchestration asked for a step: it is running (not waiting in the chat line). */
  started: boolean;
}

/**
 * Durable chats on this instance: checkpoints the runs it owns at every agent step, hands them
 * over when it drains, and adopts the runs of instances that are gone (docs/DURABLE-CHATS.md).
 * A Redis failure never fails a chat: the checkpoint is then missing, and only adoption suffers.
 */
export class DurableRuns {
  private readonly tracked = new Map<string, Tracked>();
  private draining = false;
  private adopt?: (claimed: ClaimedRun) => void;
  private timer?: TimerHandle;
  private sweeping?: Promise<void>;
  private saveFailing = false;

  constructor(private readonly options: DurableRunsOptions) {}

  /** Owns `run` durably from now on: its checkpoint (no step yet) is written at once. */
  begin(run: Run, checkpoint: RunCheckpoint, started = false): void {
    const entry: Tracked = { run, checkpoint, started };
    this.tracked.set(run.id, entry);
    void this.save(entry);
    void run.finished.then(() => {
      this.tracked.delete(run.id);
      if (run.handedOver) return;
      this.options.checkpoints.finish(run.id, run.epoch).catch((error: unknown) => this.failed(error));
    });
  }

  /** The step journal of a run begun here: `completed` are the steps a previous owner made. */
  journal(run: Run, completed: readonly AgentResult[] = []): StepJournal {
    return new StepJournal(completed, {
      handOverHere: async () => {
        const entry = this.tracked.get(run.id);
        if (entry) entry.started = true;
        // Drain by handing over: at the agent boundary, when another instance can take the run.
        if (!this.draining || this.options.liveness.instanceCount() < 2) return false;
        return this.handOver(run);
      },
      checkpoint: async (steps) => {
        const entry = this.tracked.get(run.id);
        if (!entry) return true;
        entry.checkpoint = { ...entry.checkpoint, steps, lastEventId: run.lastEventId };
        const saved = await this.save(entry);
        if (saved === false) {
          this.options.logger.warn({ runId: run.id }, 'another instance owns this run now: stopping it here');
          run.handOver();
        }
        return saved !== false;
      },
    });
  }

  /**
   * Adopts orphaned runs from now on, handing each claimed one to `adopt` (which runs it).
   * Resolves after the first look, so runs left for this instance are known before it listens
   * (a client reconnecting at once then finds its run, not a 204).
   */
  async startAdopting(adopt: (claimed: ClaimedRun) => void): Promise<void> {
    this.adopt = adopt;
    this.sweeping = this.sweep();
    await this.sweeping;
    this.sweeping = undefined;
    this.schedule(this.options.adoptIntervalMs);
  }

  /**
   * The drain begins: this instance adopts nothing more; runs still waiting to start are handed
   * over at once and running ones at their next agent step, while another instance is alive.
   */
  async drain(): Promise<void> {
    this.draining = true;
    this.stopAdopting();
    await this.sweeping;
    if (this.options.liveness.instanceCount() < 2) return;
    const waiting = [...this.tracked.values()].filter((entry) => !entry.started);
    await Promise.all(waiting.map((entry) => this.handOver(entry.run)));
  }

  /** The drain's grace is over: every run still here is handed over (the step in flight is made again). */
  async handOverRemaining(): Promise<number> {
    const remaining = [...this.tracked.values()].filter((entry) => !entry.run.isFinished);
    const handed = await Promise.all(remaining.map((entry) => this.handOver(entry.run)));
    return handed.filter(Boolean).length;
  }

  stopAdopting(): void {
    this.adopt = undefined;
    if (this.timer) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Gives the run up in Redis, then stops it here. False when Redis could not be told (it goes on here). */
  private async handOver(run: Run): Promise<boolean> {
    if (run.isFinished) return false;
    if (this.options.checkpoints.readByNextStartOnly) {
      // Stopped first, in the same turn as the events are read: a delta sent while the file is
      // written would reach the client but not the file, and be sent again after the restart.
      const events = run.events();
      run.handOver();
      try {
        return await this.options.checkpoints.handOver(run.id, run.epoch, events);
      } catch (error) {
        this.failed(error);
        return false;
      }
    }
    // Nothing reaches this run's clients while the handover is agreed: from the moment Redis names
    // no owner, this instance's events are refused by the shared log, and one a client read here
    // would be made again by the adopter under the same id.
    const release = run.holdDelivery();
    try {
      await this.options.checkpoints.handOver(run.id, run.epoch, run.events());
    } catch (error) {
      release();
      this.failed(error);
      return false;
    }
    this.options.logger.info({ runId: run.id }, 'handing the run over to another instance');
    run.handOver();
    release();
    return true;
  }

  /** True saved, false fenced off, undefined when Redis failed (the chat goes on regardless). */
  private async save(entry: Tracked): Promise<boolean | undefined> {
    try {
      const saved = await this.options.checkpoints.save(entry.checkpoint, entry.run.epoch);
      if (this.saveFailing) {
        this.saveFailing = false;
        this.options.logger.info('run checkpoints reach Redis again');
      }
      return saved;
    } catch (error) {
      this.failed(error);
      return undefined;
    }
  }

  private failed(error: unknown): void {
    if (this.saveFailing) return;
    this.saveFailing = true;
    this.options.logger.warn(
      { error: error instanceof Error ? error.message : String(error) },
      'run checkpoints cannot be written to Redis: until it is back, a chat dies with its instance',
    );
  }

  private schedule(delayMs: number): void {
    if (!this.adopt) return;
    this.timer = this.options.clock.setTimeout(() => {
      this.timer = undefined;
      this.sweeping = this.sweep().finally(() => {
        this.sweeping = undefined;
        this.schedule(this.options.adoptIntervalMs);
      });
    }, delayMs);
  }

  /** Claims the runs whose owner is gone (or handed them over); each is claimed by one instance only. */
  private async sweep(): Promise<void> {
    const { checkpoints, liveness, instanceId } = this.options;
    try {
      const byOwner = new Map<string, string[]>();
      for (const [runId, owner] of await checkpoints.owners()) {
        // Its own runs, and a run it still runs here (taken for dead while paused, say: its copy
        // is fenced off at its next write, and only then may this instance claim the run back).
        if (owner === instanceId || this.tracked.has(runId)) continue;
        byOwner.set(owner, [...(byOwner.get(owner) ?? []), runId]);
      }
      for (const [owner, runIds] of byOwner) {
        if (owner !== '' && (await liveness.isAlive(owner))) continue;
        // Several instances sweep the same orphans: a random order spreads them out.
        for (const runId of shuffled(runIds)) {
          if (!this.adopt) return;
          const claimed = await checkpoints.claim(runId, owner);
          if (!claimed) continue;
          this.options.logger.debug(
            {
              runId,
              previousOwner: owner || '(handed over)',
              epoch: claimed.epoch,
              steps: claimed.checkpoint.steps.length,
            },
            'adopting a run whose instance is gone',
          );
          this.adopt(claimed);
        }
      }
    } catch (error) {
      this.options.logger.warn(
        { error: error instanceof Error ? error.message : String(error) },
        'looking for orphaned runs failed; trying again',
      );
    }
  }
}

function shuffled<T>(items: T[]): T[] {
  const copy = [...items];
  for (let index = copy.length - 1; index > 0; index--) {
    const other = Math.floor(Math.random() * (index + 1));
    [copy[index], copy[other]] = [copy[other], copy[index]];
  }
  return copy;
}

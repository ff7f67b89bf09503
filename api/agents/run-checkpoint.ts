import type { RunEvent } from '../streaming/run-events';
import type { AgentResult } from './base-agent';
import type { ChatMode } from './orchestrator';

/**
 * What a live instance needs to continue a chat another instance started (durable chats): the
 * turn's request and every agent step completed so far. Written when the run opens and after each
 * agent step; the steps' events are already in the run's shared event stream.
 */
export interface RunCheckpoint {
  runId: string;
  userId: string;
  conversationId: string;
  message: string;
  mode: ChatMode;
  /** The chat's deadline as wall time (epoch ms): clocks of two processes are not comparable. */
  deadlineAt?: number;
  newConversation: boolean;
  /** When the chat arrived, wall time (epoch ms): an adopted chat's `totalMs` counts from it. */
  arrivedAt: number;
  /** The completed agent steps, in the order the orchestrator asked for them. */
  steps: AgentResult[];
  /** The run's newest event id when the last step was saved: later events belong to the step in flight. */
  lastEventId: number;
}

/** A run this instance claimed: its checkpoint, fencing token and the events written so far. */
export interface ClaimedRun {
  checkpoint: RunCheckpoint;
  /** The ownership generation this instance holds it under (every write carries it). */
  epoch: number;
  /** The run's events as the previous owner left them in the shared stream. */
  events: RunEvent[];
}

/**
 * Where durable runs' checkpoints and ownership live (Redis). Every write names the writer and its
 * epoch and is refused once another instance owns the run (fencing): `false` then.
 */
export interface RunCheckpoints {
  /** Saves the checkpoint while this instance owns the run with `epoch`. */
  save(checkpoint: RunCheckpoint, epoch: number): Promise<boolean>;
  /** The run wrote its terminal event: nothing is left to adopt. */
  finish(runId: string, epoch: number): Promise<boolean>;
  /**
   * Gives an unfinished run up: any live instance (or this one, restarted) may claim it. `events`
   * are the run's events so far, for a store that does not already hold them (Redis does).
   */
  handOver(runId: string, epoch: number, events: readonly RunEvent[]): Promise<boolean>;
  /**
   * Only this process's next start reads what is handed over (the embedded store, no Redis): the
   * run is stopped before it is written, so the events kept are exactly those its clients saw —
   * nothing can go on here afterwards anyway.
   */
  readonly readByNextStartOnly?: boolean;
  /** Every durable run with its owner's instance id ("" once handed over). */
  owners(): Promise<Map<string, string>>;
  /** Takes the run if its owner is still `seenOwner` (exactly one claimer wins); undefined otherwise. */
  claim(runId: string, seenOwner: string): Promise<ClaimedRun | undefined>;
}

/** Who is alive among the instances (the cluster's registry, through this small window). */
export interface InstanceLiveness {
  isAlive(instanceId: string): Promise<boolean>;
  /** Live instances, this one included (the last known count). */
  instanceCount(): number;
}

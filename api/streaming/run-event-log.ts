import type { Run } from './run';
import type { RunEvent } from './run-events';

/** A run as the shared log knows it: enough to authorise a reader and follow the run elsewhere. */
export interface SharedRun {
  runId: string;
  userId: string;
  conversationId: string;
  /** The instance that runs it (and alone writes its events). */
  ownerId: string;
  /** The id of its terminal event, once it has one. */
  terminalId?: number;
  /** Durable chats: it has a checkpoint, so a live instance adopts it if its owner dies. */
  durable?: boolean;
}

/** Why following a shared run stopped. */
export type FollowEnd =
  /** Its `done` or `error` was delivered. */
  | 'terminal'
  /** The owner is gone (killed, say) before writing a terminal event: nothing more will come. */
  | 'owner_lost'
  /** The log became unreachable for longer than a follower waits. */
  | 'unavailable'
  /** The caller's signal (the client left). */
  | 'aborted';

/**
 * Where a run's events go besides its in-process log, so that `GET /api/runs/:id/events` works on
 * whichever instance the load balancer picks. Runs owned here are still served from memory; the
 * log serves the runs of other instances.
 */
export interface RunEventLog {
  /** Mirrors the events of a run this instance owns, from its first one on. */
  record(run: Run): void;
  /** A run another instance owns; undefined when the log does not know it (unknown or expired). */
  find(runId: string): Promise<SharedRun | undefined>;
  /**
   * Hands `onEvent` the run's events after `afterId`, then the live ones, until the terminal
   * event, the owner's loss, the log's loss, or `signal`.
   */
  follow(
    run: SharedRun,
    afterId: number,
    onEvent: (record: RunEvent) => void,
    signal: AbortSignal,
  ): Promise<FollowEnd>;
  /**
   * Tells the run's owner someone follows it here until `signal` aborts, so its resume grace does
   * not cancel a run that a client follows through another instance.
   */
  attend(run: SharedRun, signal: AbortSignal): void;
  close(): Promise<void>;
}

/** Single instance (no REDIS_URL): every run is local, so there is nothing to share or find. */
export class LocalRunEventLog implements RunEventLog {
  record(): void {}

  async find(): Promise<SharedRun | undefined> {
    return undefined;
  }

  async follow(): Promise<FollowEnd> {
    return 'unavailable';
  }

  attend(): void {}

  async close(): Promise<void> {}
}

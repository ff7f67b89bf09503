import { randomUUID } from 'node:crypto';
import { AppError } from '../errors';
import type { AgentName } from '../agents/agent-name';
import type { Usage } from '../llm/provider';
import { isTerminal, type RunEvent, type RunEventMap, type RunEventName } from './run-events';

export type RunListener = (event: RunEvent) => void;

/** The abort reason of a run handed over to another instance: its work stops, nothing is written. */
export const HANDED_OVER = new AppError('shutting_down', 'The run was handed over to another instance');

/** One agent turn of a finished run, for the JSON answer (kept apart from the bounded event log). */
export interface AgentSummary {
  agent: AgentName;
  text: string;
  usage: Usage;
  waitMs: number;
  processMs: number;
}

/**
 * One chat turn in progress: its cancellation signal and the log of its events (ids 1, 2, 3 …),
 * so any number of listeners can follow it and a listener that reconnects can replay what it missed.
 */
export class Run {
  readonly id: string;
  readonly controller = new AbortController();
  private readonly log: RunEvent[] = [];
  private readonly listeners = new Set<RunListener>();
  /** Observers that are not listeners: they see every event but keep nobody's run alive. */
  private readonly taps = new Set<RunListener>();
  private readonly handOverListeners = new Set<() => void>();
  private nextId = 1;
  private terminal?: RunEvent;
  private droppedThrough = 0;
  private resolveFinished!: (event: RunEvent) => void;
  private handedOverFlag = false;
  /** Events kept from the listeners while a handover is being agreed (holdDelivery). */
  private held?: RunEvent[];
  /**
   * The ownership generation this process holds the run under (durable chats): 1 for a run it
   * opened, the claim's fencing token for one it adopted. Its shared-log writes carry it.
   */
  epoch = 1;
  /** Set by the orchestrator just before `done`. */
  agents: AgentSummary[] = [];
  /** Resolves with the run's last event (`done` or `error`). */
  readonly finished = new Promise<RunEvent>((resolve) => (this.resolveFinished = resolve));

  constructor(
    readonly conversationId: string,
    readonly userId: string,
    private readonly maxEvents = 5000,
    /**
     * An adopted run (durable chats): its id, and the events another instance already wrote, so
     * a listener here replays them too and new events continue their ids.
     */
    adopted?: { id: string; events: readonly RunEvent[] },
  ) {
    this.id = adopted?.id ?? randomUUID();
    if (adopted) {
      this.log.push(...adopted.events.slice(-maxEvents));
      this.nextId = (adopted.events.at(-1)?.id ?? 0) + 1;
    }
  }

  /** This process stopped running the run without ending it: another instance continues it. */
  get handedOver(): boolean {
    return this.handedOverFlag;
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get isFinished(): boolean {
    return this.terminal !== undefined;
  }

  /** The id of the newest event (0 before any). */
  get lastEventId(): number {
    return this.nextId - 1;
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  /** Appends an event and hands it to every listener; events after the terminal one are ignored. */
  emit<K extends RunEventName>(event: K, data: RunEventMap[K]): void {
    if (this.terminal) return;
    const record = { id: this.nextId++, event, data } as RunEvent;
    // A `queued` event supersedes the one before it: a run waiting for minutes is told its place
    // every few seconds, and only the latest place matters to a client that replays the log.
    if (event === 'queued' && this.log.at(-1)?.event === 'queued') this.log.pop();
    this.log.push(record);
    if (this.log.length > this.maxEvents) {
      // Bounded memory: the oldest events go first — except `run`, which a replay always starts with;
      // a replay from before the dropped ones continues at the oldest kept.
      this.droppedThrough = this.log.splice(1, 1)[0].id;
    }
    if (isTerminal(event)) {
      this.terminal = record;
      this.resolveFinished(record);
    }
    for (const tap of this.taps) tap(record);
    if (this.held) this.held.push(record);
    else this.deliver(record);
  }

  private deliver(record: RunEvent): void {
    // One listener is the usual case: no copy of the set per event (tokens are most events).
    if (this.listeners.size === 1) this.listeners.values().next().value!(record);
    else if (this.listeners.size > 1) for (const listener of [...this.listeners]) listener(record);
  }

  /**
   * Keeps new events from the listeners (they are still logged and tapped) until the returned
   * function is called, which sends them on — unless the run was handed over meanwhile, when they
   * are dropped. Durable chats hold a run while its handover is agreed in Redis: an event a client
   * read in that moment could not be written to the shared log any more (the owner has changed), and
   * the adopter would make it again under the same id.
   */
  holdDelivery(): () => void {
    this.held ??= [];
    return () => {
      const held = this.held ?? [];
      this.held = undefined;
      if (this.handedOverFlag) return;
      for (const record of held) this.deliver(record);
    };
  }

  /**
   * Sees every event from now on (the shared run event log mirrors runs this way) without counting
   * as a listener: a tapped run nobody follows is still cancelled after its grace.
   */
  tap(observer: RunListener): void {
    this.taps.add(observer);
  }

  /** Replays events after `afterId`, then follows live ones. Returns the unsubscribe function. */
  subscribe(listener: RunListener, afterId = 0): () => void {
    for (const record of this.log) {
      const kept = record === this.log[0] || record.id > this.droppedThrough;
      if (kept && record.id > afterId) listener(record);
    }
    if (this.terminal) return () => undefined;
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /**
   * Stops running the run here without a terminal event (durable chats: another instance adopts it
   * and continues the same event stream). Later events are ignored; `finished` resolves (with a
   * `shutting_down` record that is neither logged nor sent) so whatever waits for the run lets go;
   * listeners are told through `onHandOver`, so their streams end and their clients reconnect.
   */
  handOver(): void {
    if (this.terminal) return;
    this.handedOverFlag = true;
    const record: RunEvent = {
      id: this.lastEventId,
      event: 'error',
      data: { code: 'shutting_down', message: 'This instance handed the run over to another one' },
    };
    this.terminal = record;
    this.resolveFinished(record);
    for (const listener of [...this.handOverListeners]) listener();
    this.handOverListeners.clear();
    this.listeners.clear();
    if (!this.controller.signal.aborted) this.controller.abort(HANDED_OVER);
  }

  /** Calls `listener` if the run is handed over to another instance (see handOver). */
  onHandOver(listener: () => void): () => void {
    if (this.handedOverFlag) {
      listener();
      return () => undefined;
    }
    this.handOverListeners.add(listener);
    return () => this.handOverListeners.delete(listener);
  }

  /** Stops the run's work; the orchestrator turns the abort into the run's `error` event. */
  cancel(reason: AppError = new AppError('cancelled')): void {
    if (!this.controller.signal.aborted) this.controller.abort(reason);
  }

  events(): readonly RunEvent[] {
    return this.log;
  }
}

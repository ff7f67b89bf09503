import { v7 as timeOrderedId } from 'uuid';
import type { Clock } from '../clock';
import { AppError, abortReason, toAppError } from '../errors';
import type { Logger } from '../logger';
import type { Admission, LlmGateway } from '../llm/llm-gateway';
import type { Store } from '../store/store';
import type { Run } from '../streaming/run';
import type { RunRegistry } from '../streaming/run-registry';
import type { DurableRuns } from './durable-runs';
import type { ChatMode, ChatTurn, Orchestrator } from './orchestrator';
import { ReplayFilter } from './replay-filter';
import type { ClaimedRun } from './run-checkpoint';
import { RunHandedOver } from './step-journal';

export interface ChatRequest {
  userId: string;
  message: string;
  mode: ChatMode;
  conversationId?: string;
  /** false: the client reads only the final answer (JSON), so its calls need not stream tokens. */
  streamDeltas?: boolean;
}

/** What the service needs to know of the LLM queue's pause (the scheduler). */
export interface PauseState {
  readonly isPaused: boolean;
  status(): { queueLength: number };
}

/**
 * The path from a validated chat request to a running chat: the conversation check, the per-user
 * limit, the run and its deadline, and the orchestrator started on it (when the chat line, which
 * admission drives, says so). It owns the run's end: the terminal `done` or `error` is written here, in one
 * place, whatever ended the chat (its orchestration, a cancellation before it started, the deadline).
 */
export class ChatService {
  private readonly activeByUser = new Map<string, number>();

  constructor(
    private readonly options: {
      store: Store;
      llm: LlmGateway;
      pause: PauseState;
      runs: RunRegistry;
      orchestrator: Orchestrator;
      clock: Clock;
      logger: Logger;
      /** Concurrent chats one user may have; 0 = no limit. */
      userMaxActiveChats: number;
      /** The whole chat's deadline from its arrival (CHAT_TIMEOUT_MS); 0 = none. */
      chatTimeoutMs: number;
      /** Durable chats (REDIS_URL): streamed runs are checkpointed, handed over and adopted. */
      durable?: DurableRuns;
    },
  ) {}

  /**
   * Checks a chat and creates its run (whose first event is `run`), the `start` that runs it and its
   * deadline; the caller hands them to the chat line. Throws AppError (not_found, user_rate_limited)
   * before anything is started.
   */
  async open(
    request: ChatRequest,
  ): Promise<{ run: Run; start: () => Promise<void>; deadline: number | undefined }> {
    const { store, llm, runs, userMaxActiveChats, clock } = this.options;
    // The closures below (kept while the chat waits in the SSE line, up to 10,000 of them) capture
    // these, not `request`.
    const { userId, message, mode, streamDeltas } = request;
    const arrivedAt = clock.now();
    let conversationId = request.conversationId;
    const newConversation = conversationId === undefined;
    if (conversationId !== undefined) {
      const existing = await store.getConversation(conversationId);
      // Someone else's conversation is reported as missing: its existence is not ours to reveal.
      if (!existing || existing.userId !== userId) {
        throw new AppError('not_found', `Conversation ${conversationId} was not found`);
      }
    } else {
      // Time-ordered (UUIDv7): a new conversation's rows land at the right edge of the store's
      // indexes instead of on a random page each (fewer pages written per commit; 74 random bits).
      conversationId = timeOrderedId();
    }
    const active = this.activeByUser.get(userId) ?? 0;
    if (userMaxActiveChats > 0 && active >= userMaxActiveChats) {
      throw new AppError(
        'user_rate_limited',
        `User ${userId} already has ${active} chats running (USER_MAX_ACTIVE_CHATS=${userMaxActiveChats})`,
        { retryAfterMs: 1000 },
      );
    }
    // Counted before admission awaits, so a burst of one user's requests cannot all pass the check.
    this.activeByUser.set(userId, active + 1);
    const leave = () => {
      const remaining = (this.activeByUser.get(userId) ?? 1) - 1;
      if (remaining > 0) this.activeByUser.set(userId, remaining);
      else this.activeByUser.delete(userId);
    };
    const run = runs.create(conversationId, userId, { replayable: streamDeltas !== false });
    // Registered with the scheduler until the run ends: none of its calls is shed by the queue bound.
    let admission: Admission;
    try {
      admission = await llm.admit({ userId, runId: run.id });
    } catch (error) {
      leave();
      runs.discard(run.id);
      throw error;
    }
    // A JSON client learns a new conversation's id only from the answer: its turn's one write
    // stores the conversation too (one commit per chat instead of two, cpu benchmark). A stream is
    // told the id at once, and may use it before the turn ends: its conversation exists from now.
    const storeWithTurn = newConversation && streamDeltas === false;
    try {
      if (!storeWithTurn) await store.ensureConversation(conversationId, userId);
    } catch (error) {
      admission.release();
      leave();
      runs.discard(run.id);
      throw error;
    }
    const deadline = this.options.chatTimeoutMs > 0 ? arrivedAt + this.options.chatTimeoutMs : undefined;
    const state = this.supervise(run, { deadline, release: () => admission.release(), leave });
    run.emit('run', { runId: run.id, conversationId });
    const durable = streamDeltas !== false ? this.options.durable : undefined;
    durable?.begin(run, {
      runId: run.id,
      userId,
      conversationId,
      message,
      mode,
      ...(deadline !== undefined ? { deadlineAt: Date.now() + (deadline - clock.now()) } : {}),
      newConversation,
      arrivedAt: Date.now(),
      steps: [],
      lastEventId: run.lastEventId,
    });
    const start = async (): Promise<void> => {
      if (state.started || run.isFinished) return;
      state.started = true;
      await this.execute(run, {
        run,
        message,
        mode,
        deadline,
        ...(streamDeltas === false ? { streamDeltas: false } : {}),
        ...(newConversation ? { newConversation } : {}),
        ...(storeWithTurn ? { storeConversation: true } : {}),
        ...(durable ? { journal: durable.journal(run) } : {}),
      });
    };
    return { run, start, deadline };
  }

  /**
   * Continues a run another instance started and this one claimed (durable chats): the steps its
   * previous owner completed are not made again, the step in flight is, and the run's events go
   * on in the same stream. It starts at once: it was admitted when it first arrived.
   */
  async resume(claimed: ClaimedRun): Promise<void> {
    const { checkpoint, epoch, events } = claimed;
    const { runs, llm, clock, durable } = this.options;
    const run = runs.adopt(
      { id: checkpoint.runId, conversationId: checkpoint.conversationId, userId: checkpoint.userId, epoch },
      events,
    );
    let admission: Admission | undefined;
    try {
      admission = await llm.admit({ userId: checkpoint.userId, runId: run.id });
    } catch {
      // The queue refuses new chats (paused, full): this one is not new; its calls wait like any other.
    }
    const deadline =
      checkpoint.deadlineAt === undefined ? undefined : clock.now() + (checkpoint.deadlineAt - Date.now());
    const state = this.supervise(run, { deadline, release: () => admission?.release(), leave: () => {} });
    state.started = true;
    durable?.begin(run, checkpoint, true);
    const shown = events.filter((record) => record.id > checkpoint.lastEventId);
    // Warn: an adoption means an instance went away; a step made again may cost a provider call.
    this.options.logger.warn(
      {
        runId: run.id,
        epoch,
        completedSteps: checkpoint.steps.length,
        stepMadeAgain: shown.some((record) => record.event === 'agent_start'),
      },
      'continuing a chat whose instance is gone',
    );
    await this.execute(run, {
      run,
      message: checkpoint.message,
      mode: checkpoint.mode,
      deadline,
      ...(checkpoint.newConversation ? { newConversation: true } : {}),
      // Its conversation may live in another instance's own store (embedded SQLite): created if missing.
      storeConversation: true,
      ...(durable ? { journal: durable.journal(run, checkpoint.steps) } : {}),
      emit: new ReplayFilter(shown, (event, data) => run.emit(event, data)).emit,
    });
  }

  /** Runs the turn and writes its terminal event: `done`, or `error` with why it ended. */
  private async execute(run: Run, turn: ChatTurn): Promise<void> {
    if (this.options.pause.isPaused) this.announcePause(run);
    try {
      const done = await this.options.orchestrator.execute(turn);
      run.emit('done', done);
    } catch (caught) {
      this.fail(run, caught);
    }
  }

  /**
   * The run's deadline, its end before it started, and what its end gives back (admission, the
   * user's count). `started` is set by whoever starts the run.
   */
  private supervise(
    run: Run,
    options: { deadline: number | undefined; release: () => void; leave: () => void },
  ): { started: boolean } {
    const { clock } = this.options;
    const { deadline } = options;
    const state = { started: false };
    // A chat still waiting in the line at its deadline never spent quota: it was not served in time
    // (overloaded, retry later), not a chat that failed.
    const deadlineTimer =
      deadline === undefined
        ? undefined
        : clock.setTimeout(
            () =>
              run.cancel(
                state.started
                  ? new AppError(
                      'chat_timeout',
                      `The chat ran past CHAT_TIMEOUT_MS (${this.options.chatTimeoutMs} ms)`,
                    )
                  : new AppError(
                      'overloaded',
                      `The chat waited its whole CHAT_TIMEOUT_MS (${this.options.chatTimeoutMs} ms) without starting`,
                      { retryAfterMs: 1_000 },
                    ),
              ),
            deadline - clock.now(),
          );
    // A run cancelled before it started (its client left while waiting) has no orchestration to end it.
    const onAbort = () => {
      if (!state.started) this.fail(run, undefined);
    };
    run.signal.addEventListener('abort', onAbort);
    void run.finished.then(() => {
      if (deadlineTimer) clock.clearTimeout(deadlineTimer);
      options.release();
      options.leave();
      // A finished run stays replayable for minutes: its signal must not keep this chat's request,
      // admission and start closure alive that long (10,000 released streams, sse-capacity).
      run.signal.removeEventListener('abort', onAbort);
    });
    return state;
  }

  /** Tells every running chat (or one) that the LLM queue is paused: its calls wait for resume. */
  announcePause(only?: Run): void {
    const position = this.options.pause.status().queueLength;
    for (const run of only ? [only] : this.options.runs.active()) {
      run.emit('queued', { position, estimatedWaitMs: null, paused: true });
    }
  }

  /** Ends the run with its error: an abort's reason says why (client left, shutdown, deadline, clear). */
  private fail(run: Run, caught: unknown): void {
    // Handed over (or fenced off): another instance continues the run and writes its end.
    if (run.handedOver || caught instanceof RunHandedOver) return;
    const error = run.signal.aborted ? abortReason(run.signal) : toAppError(caught);
    if (error.code === 'internal') this.options.logger.error({ err: caught, runId: run.id }, 'run failed');
    else this.options.logger.info({ runId: run.id, code: error.code }, 'run ended with an error');
    run.emit('error', error.toBody().error);
  }
}

import { randomUUID } from 'node:crypto';
import { AppError, abortReason } from '../errors';
import type { Logger } from '../logger';
import type { Admission, LlmGateway } from '../llm/llm-gateway';
import type { Store } from '../store/store';
import type { Run } from '../streaming/run';
import type { RunRegistry } from '../streaming/run-registry';
import type { ChatMode, Orchestrator } from './orchestrator';

export interface ChatRequest {
  userId: string;
  message: string;
  mode: ChatMode;
  conversationId?: string;
  /** false: the client reads only the final answer (JSON), so its calls need not stream tokens. */
  streamDeltas?: boolean;
}

/**
 * The path from a validated chat request to a running chat: the conversation check, admission
 * control (refuse at once what cannot finish), the run, and the orchestrator started on it.
 */
export class ChatService {
  private readonly activeByUser = new Map<string, number>();

  constructor(
    private readonly options: {
      store: Store;
      llm: LlmGateway;
      runs: RunRegistry;
      orchestrator: Orchestrator;
      logger: Logger;
      /** Concurrent chats one user may have; 0 = no limit. */
      userMaxActiveChats: number;
    },
  ) {}

  /**
   * Checks and admits a chat, creating its run (whose first event is `run`). Throws AppError
   * (not_found, user_rate_limited, overloaded) before anything is started.
   */
  async open(request: ChatRequest): Promise<{ run: Run; start: () => Promise<void> }> {
    const { store, llm, runs, userMaxActiveChats } = this.options;
    let conversationId = request.conversationId;
    if (conversationId !== undefined) {
      const existing = await store.getConversation(conversationId);
      // Someone else's conversation is reported as missing: its existence is not ours to reveal.
      if (!existing || existing.userId !== request.userId) {
        throw new AppError('not_found', `Conversation ${conversationId} was not found`);
      }
    } else {
      conversationId = randomUUID();
    }
    // From here to the admission nothing awaits, so concurrent requests cannot both pass the checks.
    const active = this.activeByUser.get(request.userId) ?? 0;
    if (userMaxActiveChats > 0 && active >= userMaxActiveChats) {
      throw new AppError(
        'user_rate_limited',
        `User ${request.userId} already has ${active} chats running (USER_MAX_ACTIVE_CHATS=${userMaxActiveChats})`,
        { retryAfterMs: 1000 },
      );
    }
    const run = runs.create(conversationId, request.userId, { replayable: request.streamDeltas !== false });
    // Refused before any stream opens (and before anything is stored). Admitted, the chat's calls
    // count as work ahead of later chats — also while it waits for an SSE slot — until they are
    // enqueued or the run ends.
    let admission: Admission;
    try {
      admission = llm.admit({
        userId: request.userId,
        runId: run.id,
        expectedCalls: this.expectedCalls(request.mode),
      });
    } catch (error) {
      runs.discard(run.id);
      throw error;
    }
    this.activeByUser.set(request.userId, active + 1);
    const release = () => {
      admission.release();
      const remaining = (this.activeByUser.get(request.userId) ?? 1) - 1;
      if (remaining > 0) this.activeByUser.set(request.userId, remaining);
      else this.activeByUser.delete(request.userId);
    };
    try {
      await store.ensureConversation(conversationId, request.userId);
    } catch (error) {
      release();
      runs.discard(run.id);
      throw error;
    }
    void run.finished.then(release);
    run.emit('run', { runId: run.id, conversationId });
    let started = false;
    // A run cancelled before it started (its client left while waiting) has no orchestrator to end it.
    run.signal.addEventListener('abort', () => {
      if (!started) run.emit('error', abortReason(run.signal).toBody().error);
    });
    const start = async (): Promise<void> => {
      if (started) return;
      started = true;
      await this.options.orchestrator.execute({
        run,
        message: request.message,
        mode: request.mode,
        ...(request.streamDeltas === false ? { streamDeltas: false } : {}),
      });
    };
    return { run, start };
  }

  /** Provider calls a chat is expected to make; a revision round is not assumed (most plans pass). */
  private expectedCalls(mode: ChatMode): number {
    return mode === 'single' ? 1 : 4;
  }
}

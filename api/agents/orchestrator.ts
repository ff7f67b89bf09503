import type { Clock } from '../clock';
import type { Logger } from '../logger';
import type { CapacityProbe } from '../llm/capacity-probe';
import type { LlmGateway } from '../llm/llm-gateway';
import type { ChatMessage, Usage } from '../llm/provider';
import type { AppendOptions, NewMessage, Store } from '../store/store';
import type { Run } from '../streaming/run';
import type { EmitEvent, RunEventMap } from '../streaming/run-events';
import type { ToolRunner } from '../tools/tool-runner';
import { runAgent, type AgentDependencies, type AgentResult, type RunContext } from './base-agent';
import { critic, criticInput, parseVerdict } from './critic';
import { host, hostInput } from './host';
import { planner, plannerInput } from './planner';
import { assistant, reporter, reporterInput } from './reporter';
import { StepJournal } from './step-journal';
import {
  startSpeculativeTurn,
  type SpeculationEvent,
  type SpeculationMetrics,
  type SpeculativeTurn,
} from './speculative-turn';

export type ChatMode = 'multi_agent' | 'single';

/** AGENT_PARALLEL: `auto` speculates only while `capacity` says the provider has room. */
export type AgentParallelMode = 'auto' | 'on' | 'off';

export interface ChatTurn {
  run: Run;
  message: string;
  mode: ChatMode;
  /** The chat's deadline (clock time): no call waits or runs past it. */
  deadline?: number;
  /** false: nobody follows the run's deltas (a JSON chat); its provider calls may answer in one piece. */
  streamDeltas?: boolean;
  /** The conversation was created for this turn: it has no history to read. */
  newConversation?: boolean;
  /**
   * The new conversation is not stored yet: the turn's write creates it, in the same commit (a JSON
   * chat, whose client learns its id only from the answer).
   */
  storeConversation?: boolean;
  /**
   * Durable chats: the run's agent steps, checkpointed one by one; on an adopting instance it
   * answers the steps the previous owner completed. Absent: every step runs, nothing is saved.
   */
  journal?: StepJournal;
  /** Where the turn's events go; default the run (an adopted run filters what was already shown). */
  emit?: EmitEvent;
}

export interface OrchestratorOptions {
  llm: LlmGateway;
  store: Store;
  clock: Clock;
  logger: Logger;
  tools?: ToolRunner;
  criticMaxRounds: number;
  toolMaxRounds: number;
  maxOutputTokens: number;
  parallel: AgentParallelMode;
  /** Consulted by `auto` before each speculative Reporter draft; without one `auto` never speculates. */
  capacity?: CapacityProbe;
  /** Tool calls of one model turn at once, at most (parallel `off`: one at a time). */
  toolMaxParallel: number;
  /** Counts speculative drafts started, used, withdrawn (/metrics). */
  speculation?: SpeculationMetrics;
  /** Earlier messages of the conversation given to the agents, at most. */
  historyMessages?: number;
}

/**
 * Runs one chat turn: multi_agent is Host → Planner ⇄ Critic (bounded revisions) → Reporter;
 * single is one answering call. It reports only through the run's events and the store; it never
 * touches HTTP. It resolves with the run's `done` payload or rejects; the run's owner (ChatService)
 * writes the terminal event.
 *
 * Parallel agents (AGENT_PARALLEL): while the Critic reviews a plan, the Reporter may already draft
 * from it. Its events are held back until the Critic's verdict: an approval releases them (after the
 * Critic's `agent_end`), a request for revision cancels the draft at once. The Reporter's input does
 * not contain an approving review (reporter.ts), so the draft is exactly what a sequential run would
 * write: stored messages and `done` are the same in every mode.
 */
export class Orchestrator {
  constructor(private readonly options: OrchestratorOptions) {}

  async execute(turn: ChatTurn): Promise<RunEventMap['done']> {
    const { run } = turn;
    const { store, clock } = this.options;
    const startedAt = clock.now();
    const context: RunContext = {
      runId: run.id,
      userId: run.userId,
      conversationId: run.conversationId,
      signal: run.signal,
      deadline: turn.deadline,
      emit: turn.emit ?? ((event, data) => run.emit(event, data)),
      ...(turn.streamDeltas === false ? { streamDeltas: false } : {}),
    };
    const userMessage: NewMessage = {
      conversationId: run.conversationId,
      role: 'user',
      content: turn.message,
      runId: run.id,
    };
    const appendOptions = turn.storeConversation ? { createFor: run.userId } : undefined;
    let stored = false;
    const journal = turn.journal ?? new StepJournal([]);
    try {
      // A fresh conversation has nothing to read: one store query less per new chat (cpu benchmark).
      const history = turn.newConversation ? [] : await this.history(run.conversationId);
      const results =
        turn.mode === 'single'
          ? [
              await journal.step(() =>
                runAgent(assistant, { history, content: turn.message }, context, this.agentDeps()),
              ),
            ]
          : await this.multiAgent(turn.message, history, context, journal);
      run.signal.throwIfAborted();

      const answer = results[results.length - 1].text;
      const usage = sumUsage(results);
      const timings = {
        totalMs: Math.round(clock.now() - startedAt),
        queueWaitMs: results.reduce((total, result) => total + result.waitMs, 0),
      };
      // The whole turn in one write (DESIGN: store writes batched per chat): each append is a few
      // file writes in the embedded store, the largest cost per chat after the sockets (cpu benchmark).
      const messages = await store.appendMessages(
        [
          userMessage,
          ...results.slice(0, -1).map((result): NewMessage => ({
            conversationId: run.conversationId,
            role: 'agent',
            agent: result.agent,
            content: result.text,
            ...(result.reasoning ? { reasoning: result.reasoning } : {}),
            usage: result.usage,
            timings: { waitMs: result.waitMs, processMs: result.processMs },
            runId: run.id,
          })),
          {
            conversationId: run.conversationId,
            role: 'assistant',
            agent: results[results.length - 1].agent,
            content: answer,
            ...(results[results.length - 1].reasoning
              ? { reasoning: results[results.length - 1].reasoning }
              : {}),
            usage,
            timings,
            runId: run.id,
          },
        ],
        appendOptions,
      );
      stored = true;
      run.agents = results.map(({ agent, text, usage, waitMs, processMs }) => ({
        agent,
        text,
        usage,
        waitMs,
        processMs,
      }));
      return {
        conversationId: run.conversationId,
        messageId: messages[messages.length - 1].id,
        answer,
        usage,
        timings,
      };
    } catch (caught) {
      // A turn that did not finish still keeps the user's message in the conversation; the run's
      // owner writes its error event. A run handed over is not over: its adopter stores the turn.
      if (!stored && !run.handedOver) await this.storeUserMessage(userMessage, run.id, appendOptions);
      throw caught;
    }
  }

  private async storeUserMessage(message: NewMessage, runId: string, options?: AppendOptions): Promise<void> {
    try {
      await this.options.store.appendMessages([message], options);
    } catch (error) {
      this.options.logger.error({ err: error, runId }, "could not store the user's message of a failed run");
    }
  }

  private async multiAgent(
    message: string,
    history: ChatMessage[],
    context: RunContext,
    journal: StepJournal,
  ): Promise<AgentResult[]> {
    const deps = this.agentDeps();
    const framing = await journal.step(() =>
      runAgent(host, { history, content: hostInput(message) }, context, deps),
    );
    let plan = await journal.step(() =>
      runAgent(planner, { history: [], content: plannerInput(message, framing.text) }, context, deps),
    );
    const results: AgentResult[] = [framing, plan];
    const research = [...plan.toolOutcomes];
    const writeReport = (turnContext: RunContext, unresolvedCritique?: string) =>
      runAgent(
        reporter,
        { history, content: reporterInput(message, framing.text, plan.text, research, unresolvedCritique) },
        turnContext,
        deps,
      );
    for (let round = 0; ; round++) {
      // Decided before the Critic's call is queued, so that call is not counted as load.
      const draft =
        !journal.replaying && this.shouldSpeculate()
          ? this.counted(startSpeculativeTurn(context, (draftContext) => writeReport(draftContext)))
          : undefined;
      let review: AgentResult;
      try {
        review = await journal.step(() =>
          runAgent(
            critic,
            { history: [], content: criticInput(message, framing.text, plan.text) },
            context,
            deps,
          ),
        );
      } catch (error) {
        draft?.withdraw();
        throw error;
      }
      results.push(review);
      const verdict = parseVerdict(review.text);
      if (verdict === 'revise' && round < this.options.criticMaxRounds) {
        draft?.withdraw();
        const previousPlan = plan.text;
        plan = await journal.step(() =>
          runAgent(
            planner,
            {
              history: [],
              content: plannerInput(message, framing.text, { previousPlan, critique: review.text }),
            },
            context,
            deps,
          ),
        );
        research.push(...plan.toolOutcomes);
        results.push(plan);
        continue;
      }
      // Out of rounds with the Critic still objecting: the Reporter reads the objections, which
      // the draft did not, so the draft is withdrawn.
      const unresolvedCritique = verdict === 'revise' ? review.text : undefined;
      const report = await journal.step(async () => {
        let written: AgentResult | undefined;
        if (draft && unresolvedCritique === undefined) written = await draft.confirm();
        else draft?.withdraw();
        return written ?? (await writeReport(context, unresolvedCritique));
      });
      results.push(report);
      return results;
    }
  }

  /** The draft, with what becomes of it counted. */
  private counted(draft: SpeculativeTurn): SpeculativeTurn {
    const record = (event: SpeculationEvent) => {
      try {
        this.options.speculation?.recordSpeculation(event);
      } catch {
        // A broken metrics sink must never fail a chat.
      }
    };
    record('started');
    let ended = false;
    return {
      async confirm() {
        const report = await draft.confirm();
        if (!ended) record(report ? 'used' : 'failed');
        ended = true;
        return report;
      },
      withdraw() {
        if (!ended) record('withdrawn');
        ended = true;
        draft.withdraw();
      },
    };
  }

  private shouldSpeculate(): boolean {
    const { parallel, capacity } = this.options;
    if (parallel === 'off') return false;
    if (parallel === 'on') return true;
    return capacity?.hasSpareCapacity() ?? false;
  }

  /** The conversation so far as chat messages: the user's turns and the final answers, not agent work. */
  private async history(conversationId: string): Promise<ChatMessage[]> {
    const keep = this.options.historyMessages ?? 12;
    // Agent work sits between the turns, so read generously and keep the newest user/assistant ones.
    const messages = await this.options.store.listMessages(conversationId, { limit: keep * 6 });
    return messages
      .filter((message) => message.role === 'user' || message.role === 'assistant')
      .slice(-keep)
      .map((message) => ({ role: message.role as 'user' | 'assistant', content: message.content }));
  }

  private agentDeps(): AgentDependencies {
    return {
      llm: this.options.llm,
      tools: this.options.tools,
      maxOutputTokens: this.options.maxOutputTokens,
      toolMaxRounds: this.options.toolMaxRounds,
      toolMaxParallel: this.options.parallel === 'off' ? 1 : this.options.toolMaxParallel,
    };
  }
}

function sumUsage(results: AgentResult[]): Usage {
  return results.reduce(
    (total, result) => ({
      promptTokens: total.promptTokens + result.usage.promptTokens,
      completionTokens: total.completionTokens + result.usage.completionTokens,
    }),
    { promptTokens: 0, completionTokens: 0 },
  );
}

import type { Clock } from '../clock';
import { abortReason, toAppError } from '../errors';
import type { Logger } from '../logger';
import type { LlmGateway } from '../llm/llm-gateway';
import type { ChatMessage, Usage } from '../llm/provider';
import type { Store, NewMessage } from '../store/store';
import type { Run } from '../streaming/run';
import type { ToolRunner } from '../tools/tool-runner';
import { runAgent, type AgentDependencies, type AgentResult, type RunContext } from './base-agent';
import { critic, criticInput, parseVerdict } from './critic';
import { host, hostInput } from './host';
import { planner, plannerInput } from './planner';
import { assistant, reporter, reporterInput } from './reporter';

export type ChatMode = 'multi_agent' | 'single';

export interface ChatTurn {
  run: Run;
  message: string;
  mode: ChatMode;
  /** false: nobody follows the run's deltas (a JSON chat); its provider calls may answer in one piece. */
  streamDeltas?: boolean;
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
  /** Earlier messages of the conversation given to the agents, at most. */
  historyMessages?: number;
}

/**
 * Runs one chat turn: multi_agent is Host → Planner ⇄ Critic (bounded revisions) → Reporter;
 * single is one answering call. It reports only through the run's events and the store; it never
 * touches HTTP, and it always ends the run with `done` or `error`.
 */
export class Orchestrator {
  constructor(private readonly options: OrchestratorOptions) {}

  async execute(turn: ChatTurn): Promise<void> {
    const { run } = turn;
    const { store, clock, logger } = this.options;
    const startedAt = clock.now();
    const context: RunContext = {
      runId: run.id,
      userId: run.userId,
      conversationId: run.conversationId,
      signal: run.signal,
      emit: (event, data) => run.emit(event, data),
      ...(turn.streamDeltas === false ? { streamDeltas: false } : {}),
    };
    const userMessage: NewMessage = {
      conversationId: run.conversationId,
      role: 'user',
      content: turn.message,
      runId: run.id,
    };
    let stored = false;
    try {
      const history = await this.history(run.conversationId);
      const results =
        turn.mode === 'single'
          ? [await runAgent(assistant, { history, content: turn.message }, context, this.agentDeps())]
          : await this.multiAgent(turn.message, history, context);
      run.signal.throwIfAborted();

      const answer = results[results.length - 1].text;
      const usage = sumUsage(results);
      const timings = {
        totalMs: clock.now() - startedAt,
        queueWaitMs: results.reduce((total, result) => total + result.waitMs, 0),
      };
      // The whole turn in one write (DESIGN: store writes batched per chat): each append is a few
      // file writes in the embedded store, the largest cost per chat after the sockets (cpu benchmark).
      const messages = await store.appendMessages([
        userMessage,
        ...results.slice(0, -1).map((result): NewMessage => ({
          conversationId: run.conversationId,
          role: 'agent',
          agent: result.agent,
          content: result.text,
          usage: result.usage,
          timings: { waitMs: result.waitMs, processMs: result.processMs },
          runId: run.id,
        })),
        {
          conversationId: run.conversationId,
          role: 'assistant',
          agent: results[results.length - 1].agent,
          content: answer,
          usage,
          timings,
          runId: run.id,
        },
      ]);
      stored = true;
      run.agents = results.map(({ agent, text, usage, waitMs, processMs }) => ({
        agent,
        text,
        usage,
        waitMs,
        processMs,
      }));
      run.emit('done', {
        conversationId: run.conversationId,
        messageId: messages[messages.length - 1].id,
        answer,
        usage,
        timings,
      });
    } catch (caught) {
      // An abort's reason says why (client left, shutdown, queue cleared); other failures keep their code.
      const error = run.signal.aborted ? abortReason(run.signal) : toAppError(caught);
      if (error.code === 'internal') logger.error({ err: caught, runId: run.id }, 'run failed');
      else logger.info({ runId: run.id, code: error.code }, 'run ended with an error');
      // A turn that did not finish still keeps the user's message in the conversation.
      if (!stored) await this.storeUserMessage(userMessage, run.id);
      run.emit('error', error.toBody().error);
    }
  }

  private async storeUserMessage(message: NewMessage, runId: string): Promise<void> {
    try {
      await this.options.store.appendMessages([message]);
    } catch (error) {
      this.options.logger.error({ err: error, runId }, "could not store the user's message of a failed run");
    }
  }

  private async multiAgent(
    message: string,
    history: ChatMessage[],
    context: RunContext,
  ): Promise<AgentResult[]> {
    const deps = this.agentDeps();
    const framing = await runAgent(host, { history, content: hostInput(message) }, context, deps);
    let plan = await runAgent(
      planner,
      { history: [], content: plannerInput(message, framing.text) },
      context,
      deps,
    );
    const results: AgentResult[] = [framing, plan];
    const research = [...plan.toolOutcomes];
    let review = await runAgent(
      critic,
      { history: [], content: criticInput(message, framing.text, plan.text) },
      context,
      deps,
    );
    results.push(review);
    for (
      let round = 0;
      round < this.options.criticMaxRounds && parseVerdict(review.text) === 'revise';
      round++
    ) {
      plan = await runAgent(
        planner,
        {
          history: [],
          content: plannerInput(message, framing.text, { previousPlan: plan.text, critique: review.text }),
        },
        context,
        deps,
      );
      research.push(...plan.toolOutcomes);
      review = await runAgent(
        critic,
        { history: [], content: criticInput(message, framing.text, plan.text) },
        context,
        deps,
      );
      results.push(plan, review);
    }
    const report = await runAgent(
      reporter,
      { history, content: reporterInput(message, framing.text, plan.text, review.text, research) },
      context,
      deps,
    );
    results.push(report);
    return results;
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

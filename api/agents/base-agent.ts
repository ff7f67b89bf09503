import pLimit from 'p-limit';
import type { LlmGateway } from '../llm/llm-gateway';
import type { ChatMessage, CompletionRequest, Usage } from '../llm/provider';
import type { EmitEvent } from '../streaming/run-events';
import type { ToolOutcome, ToolRunner } from '../tools/tool-runner';
import type { AgentName } from './agent-name';

/** Who a run works for, and how it reports and stops; shared by every agent of the run. */
export interface RunContext {
  runId: string;
  userId: string;
  conversationId: string;
  signal: AbortSignal;
  /** The chat's deadline (clock time), if it has one. */
  deadline?: number;
  emit: EmitEvent;
  /** false: the run's deltas have no reader, so calls are made non-streamed (one delta per call). */
  streamDeltas?: boolean;
}

export interface AgentResult {
  agent: AgentName;
  text: string;
  usage: Usage;
  waitMs: number;
  processMs: number;
  /** Every LLM call of the turn was answered from the response cache (no provider call). */
  cached: boolean;
  /** Tool results the agent obtained, for later stages (the Reporter's research notes). */
  toolOutcomes: ToolOutcome[];
  /** A thinking model's reasoning over the turn's calls: stored apart, never another stage's input. */
  reasoning?: string;
}

export interface AgentDependencies {
  llm: LlmGateway;
  tools?: ToolRunner;
  maxOutputTokens: number;
  toolMaxRounds: number;
  /** Tool calls of one model turn run at once, at most (1 = one after another). */
  toolMaxParallel: number;
}

export interface AgentSpec {
  name: AgentName;
  systemPrompt: string;
  /** Names of the tools this agent may call; none by default. */
  tools?: string[];
  temperature?: number;
}

/**
 * One agent turn: a system prompt, the conversation so far and this stage's input, sent through the
 * scheduler. Text streams out as `delta` events; tool calls run through the tool runner (up to
 * `toolMaxParallel` at once, results kept in the model's order) and go back to the model, for at
 * most `toolMaxRounds` rounds.
 */
export async function runAgent(
  spec: AgentSpec,
  input: { history: ChatMessage[]; content: string },
  context: RunContext,
  deps: AgentDependencies,
): Promise<AgentResult> {
  const { emit, signal } = context;
  emit('agent_start', { agent: spec.name });
  const messages: ChatMessage[] = [
    { role: 'system', content: spec.systemPrompt },
    ...input.history,
    { role: 'user', content: input.content },
  ];
  // With TOOL_MAX_ROUNDS=0 tools are never offered: no definitions to build per call.
  const toolDefinitions =
    spec.tools?.length && deps.tools && deps.toolMaxRounds > 0 ? deps.tools.definitions(spec.tools) : [];
  const usage: Usage = { promptTokens: 0, completionTokens: 0 };
  const toolOutcomes: ToolOutcome[] = [];
  let waitMs = 0;
  let processMs = 0;
  let cached = true;
  const reasoning: string[] = [];
  // Made on the first tool round: most agent turns call no tool, and p-limit builds a queue.
  let limit: ReturnType<typeof pLimit> | undefined;

  for (let round = 0; ; round++) {
    // On the last allowed round the tools are withheld, so the model has to answer with text.
    const offerTools = toolDefinitions.length > 0 && round < deps.toolMaxRounds;
    const request: CompletionRequest = {
      messages,
      maxTokens: deps.maxOutputTokens,
      temperature: spec.temperature,
      ...(offerTools ? { tools: toolDefinitions } : {}),
      ...(context.streamDeltas === false ? { stream: false } : {}),
    };
    const outcome = await deps.llm.complete(
      {
        agentType: spec.name,
        userId: context.userId,
        conversationId: context.conversationId,
        runId: context.runId,
        chatDeadline: context.deadline,
      },
      request,
      {
        signal,
        onDelta: (text) => emit('delta', { agent: spec.name, text }),
        // Its own event: the reasoning never joins the answer's text, nor the next agent's input.
        onReasoning: (text) => emit('reasoning', { agent: spec.name, text }),
      },
    );
    usage.promptTokens += outcome.usage.promptTokens;
    usage.completionTokens += outcome.usage.completionTokens;
    waitMs += outcome.waitMs;
    processMs += outcome.processMs;
    cached &&= outcome.cached === true;
    if (outcome.reasoning) reasoning.push(outcome.reasoning);

    if (!offerTools || outcome.toolCalls.length === 0 || !deps.tools) {
      const text = outcome.text.trim();
      // Times in JSON bodies and events are whole ms (README, HTTP API); the clock reads in fractions.
      waitMs = Math.round(waitMs);
      processMs = Math.round(processMs);
      emit('agent_end', { agent: spec.name, usage, waitMs, processMs, cached });
      const thought = reasoning.length > 0 ? { reasoning: reasoning.join('\n\n') } : {};
      return { agent: spec.name, text, usage, waitMs, processMs, cached, toolOutcomes, ...thought };
    }

    const tools = deps.tools;
    messages.push({ role: 'assistant', content: outcome.text, toolCalls: outcome.toolCalls });
    for (const call of outcome.toolCalls) {
      emit('tool_call', {
        agent: spec.name,
        callId: call.id,
        tool: call.name,
        args: parseArguments(call.arguments),
      });
    }
    const gate = (limit ??= pLimit(Math.max(1, deps.toolMaxParallel)));
    const results = await Promise.all(
      outcome.toolCalls.map((call) =>
        gate(() =>
          tools.run(call, { userId: context.userId, conversationId: context.conversationId, signal }),
        ),
      ),
    );
    for (const result of results) {
      emit('tool_result', {
        callId: result.callId,
        tool: result.tool,
        ok: result.ok,
        cached: result.cached,
        latencyMs: Math.round(result.latencyMs),
      });
      messages.push({ role: 'tool', toolCallId: result.callId, content: result.content });
      toolOutcomes.push(result);
    }
    signal.throwIfAborted();
  }
}

/** The model's argument text as JSON for the event, or the raw text when it is not valid JSON. */
function parseArguments(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

import { runAgent, type AgentDependencies, type RunContext } from '../../api/agents/base-agent';
import { planner } from '../../api/agents/planner';
import type { LlmGateway, LlmCallOutcome } from '../../api/llm/llm-gateway';
import type { ToolCall } from '../../api/llm/provider';
import type { ToolOutcome, ToolRunner } from '../../api/tools/tool-runner';
import { drain } from '../llm/helpers';

const calls: ToolCall[] = [1, 2, 3, 4, 5].map((index) => ({
  id: `call_${index}`,
  name: 'search_web',
  arguments: JSON.stringify({ query: `q${index}` }),
}));

/** First turn asks for five tools at once, the second answers; `cached` as given. */
function gateway(cached: boolean): LlmGateway {
  let turn = 0;
  return {
    admit: () => Promise.resolve({ release() {} }),
    async complete(): Promise<LlmCallOutcome> {
      turn++;
      return {
        text: turn === 1 ? '' : 'the plan',
        toolCalls: turn === 1 ? calls : [],
        finishReason: turn === 1 ? 'tool_calls' : 'stop',
        usage: { promptTokens: 1, completionTokens: 1 },
        waitMs: 0,
        processMs: 0,
        attempts: cached ? 0 : 1,
        cached,
      };
    },
  };
}

/** Tool calls finish when the test says so; counts how many run at once. */
class HeldTools implements ToolRunner {
  running = 0;
  maxRunning = 0;
  readonly pending: Array<() => void> = [];
  definitions() {
    return [{ name: 'search_web', description: 'search', parameters: { type: 'object' } }];
  }
  run(call: ToolCall): Promise<ToolOutcome> {
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    return new Promise((resolve) =>
      this.pending.push(() => {
        this.running--;
        resolve({
          callId: call.id,
          tool: call.name,
          ok: true,
          cached: false,
          latencyMs: 1,
          content: call.id,
        });
      }),
    );
  }
}

function context(events: Array<{ event: string; data: unknown }>): RunContext {
  return {
    runId: 'r1',
    userId: 'u1',
    conversationId: 'c1',
    signal: new AbortController().signal,
    emit: (event, data) => events.push({ event, data }),
  };
}

async function runWith(toolMaxParallel: number) {
  const tools = new HeldTools();
  const events: Array<{ event: string; data: unknown }> = [];
  const deps: AgentDependencies = {
    llm: gateway(false),
    tools,
    maxOutputTokens: 100,
    toolMaxRounds: 3,
    toolMaxParallel,
  };
  const result = runAgent(planner, { history: [], content: 'x' }, context(events), deps);
  // Finish the tool calls one by one, in the order they started, watching how many run at once.
  while (true) {
    await drain();
    const next = tools.pending.shift();
    if (!next) break;
    next();
  }
  return { result: await result, tools, events };
}

describe('runAgent: tool calls of one turn', () => {
  test.each([
    [1, 1],
    [2, 2],
    [4, 4],
  ])(
    'at most toolMaxParallel=%i at once (saw %i), results in the order the model asked',
    async (limit, expected) => {
      const { result, tools, events } = await runWith(limit);
      expect(tools.maxRunning).toBe(expected);
      const toolMessages = events
        .filter((event) => event.event === 'tool_result')
        .map((event) => (event.data as { callId: string }).callId);
      expect(toolMessages).toEqual(calls.map((call) => call.id));
      expect(result.toolOutcomes.map((outcome) => outcome.callId)).toEqual(calls.map((call) => call.id));
      expect(result.text).toBe('the plan');
    },
  );
});

describe('runAgent: cached', () => {
  test('agent_end says cached only when every call of the turn came from the cache', async () => {
    for (const cached of [true, false]) {
      const events: Array<{ event: string; data: unknown }> = [];
      const result = await runAgent(
        { name: 'critic', systemPrompt: 'You are the Critic of Troupe.' },
        { history: [], content: 'x' },
        context(events),
        { llm: gateway(cached), maxOutputTokens: 100, toolMaxRounds: 0, toolMaxParallel: 1 },
      );
      expect(result.cached).toBe(cached);
      expect(events.find((event) => event.event === 'agent_end')?.data).toMatchObject({ cached });
    }
  });
});

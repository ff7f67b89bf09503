import type { ToolCall, ToolDefinition } from '../llm/provider';

/**
 * What agents see of the tool system: the tools to offer a model, and a way to run one call the
 * model asked for. The executor (api/tools/tool-executor.ts) implements it.
 */

export interface ToolCallContext {
  userId: string;
  conversationId: string;
  signal: AbortSignal;
}

export interface ToolOutcome {
  callId: string;
  tool: string;
  ok: boolean;
  cached: boolean;
  latencyMs: number;
  /** What goes back to the model as the tool message: results, or a clear error it can act on. */
  content: string;
  /** True when the content is the tool's fallback (a degraded result), e.g. while its circuit is open. */
  degraded?: boolean;
  /** Set when ok is false: tool_rate_limited, tool_timeout, tool_unavailable, invalid_arguments, unknown_tool, tool_failed. */
  errorCode?: string;
}

export interface ToolRunner {
  /** Tool definitions in the OpenAI `tools` shape, for the named tools (all when omitted). */
  definitions(names?: string[]): ToolDefinition[];
  /** Runs one call. Never rejects: every failure comes back as an outcome with ok=false. */
  run(call: ToolCall, context: ToolCallContext): Promise<ToolOutcome>;
}

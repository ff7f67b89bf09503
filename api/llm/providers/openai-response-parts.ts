import { estimatePromptTokens, estimateTokens } from '../provider';
import type { CompletionRequest, CompletionResult, ToolCall, Usage } from '../provider';

/** What a thinking model's chunk adds to OpenAI's delta (Ark, DeepSeek: `reasoning_content`; vLLM: `reasoning`). */
export interface ReasoningDelta {
  reasoning_content?: string | null;
  reasoning?: string | null;
}

/** Usage with the details thinking models and caches report. */
export interface UsageWithDetails {
  prompt_tokens: number;
  completion_tokens: number;
  completion_tokens_details?: { reasoning_tokens?: number } | null;
}

/** A delta's (or message's) reasoning text; '' when it carries none. */
export function reasoningOf(delta: ReasoningDelta): string {
  const value = delta.reasoning_content ?? delta.reasoning;
  return typeof value === 'string' ? value : '';
}

/**
 * The provider's usage (its completion tokens include a thinking model's reasoning, which TPM
 * counts like the answer), or an estimate over everything the model wrote, reasoning included.
 */
export function toUsage(
  usage: UsageWithDetails | null | undefined,
  request: CompletionRequest,
  text: string,
  toolCalls: ToolCall[],
): Usage {
  if (usage) {
    const reasoningTokens = usage.completion_tokens_details?.reasoning_tokens;
    return {
      promptTokens: usage.prompt_tokens,
      completionTokens: usage.completion_tokens,
      ...(reasoningTokens ? { reasoningTokens } : {}),
    };
  }
  // A server that ignores include_usage still gets settled against a fair estimate.
  const calls = toolCalls.map((call) => call.name + call.arguments).join('');
  return { promptTokens: estimatePromptTokens(request), completionTokens: estimateTokens(text + calls) };
}

export function toFinishReason(
  reason: string | null | undefined,
  toolCalls: ToolCall[],
): CompletionResult['finishReason'] {
  if (toolCalls.length > 0) return 'tool_calls';
  if (reason === 'stop' || reason === 'length') return reason;
  if (reason === 'tool_calls' || reason === 'function_call') return 'tool_calls';
  return 'other';
}

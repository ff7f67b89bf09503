import { z } from 'zod';
import type { ChatMessage, CompletionRequest, CompletionResult, ToolDefinition } from '../provider';

/** sim-llm's side of the OpenAI chat-completions wire format: request validation and conversions. */

const wireContent = z.union([
  z.string(),
  z.null(),
  z.array(z.object({ type: z.string(), text: z.string().optional() }).passthrough()),
]);

export const wireRequestSchema = z.object({
  model: z.string().optional(),
  messages: z
    .array(
      z
        .object({
          role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
          content: wireContent.optional(),
          tool_calls: z
            .array(
              z.object({
                id: z.string(),
                type: z.string().optional(),
                function: z.object({ name: z.string(), arguments: z.string() }),
              }),
            )
            .optional(),
          tool_call_id: z.string().optional(),
        })
        .passthrough(),
    )
    .min(1),
  tools: z
    .array(
      z.object({
        type: z.string(),
        function: z.object({
          name: z.string(),
          description: z.string().optional(),
          parameters: z.record(z.string(), z.unknown()).optional(),
        }),
      }),
    )
    .optional(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).passthrough().nullish(),
  max_tokens: z.number().int().positive().nullish(),
  max_completion_tokens: z.number().int().positive().nullish(),
  temperature: z.number().nullish(),
  /** Ark's thinking switch; the sim thinks aloud for `enabled`. */
  thinking: z.object({ type: z.string() }).passthrough().nullish(),
});

export type WireRequest = z.infer<typeof wireRequestSchema>;

export function toCompletionRequest(wire: WireRequest): CompletionRequest {
  const messages: ChatMessage[] = wire.messages.map((message) => {
    const content =
      typeof message.content === 'string'
        ? message.content
        : (message.content ?? []).map((part) => part.text ?? '').join('');
    const role = message.role === 'developer' ? 'system' : message.role;
    const chat: ChatMessage = { role, content };
    if (message.tool_calls?.length) {
      chat.toolCalls = message.tool_calls.map((call) => ({
        id: call.id,
        name: call.function.name,
        arguments: call.function.arguments,
      }));
    }
    if (message.tool_call_id) chat.toolCallId = message.tool_call_id;
    return chat;
  });
  const tools: ToolDefinition[] | undefined = wire.tools?.map((tool) => ({
    name: tool.function.name,
    description: tool.function.description ?? '',
    parameters: tool.function.parameters ?? {},
  }));
  const maxTokens = wire.max_completion_tokens ?? wire.max_tokens ?? undefined;
  return { messages, ...(tools ? { tools } : {}), ...(maxTokens ? { maxTokens } : {}) };
}

export function toWireToolCall(call: { id: string; name: string; arguments: string }) {
  return { id: call.id, type: 'function', function: { name: call.name, arguments: call.arguments } };
}

export function toWireUsage(result: CompletionResult) {
  const { promptTokens, completionTokens, reasoningTokens } = result.usage;
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
    ...(reasoningTokens ? { completion_tokens_details: { reasoning_tokens: reasoningTokens } } : {}),
  };
}

/** Tool-call arguments in three pieces, as real providers stream them, so clients must assemble them. */
export function splitArguments(text: string): string[] {
  const size = Math.max(1, Math.ceil(text.length / 3));
  const pieces: string[] = [];
  for (let index = 0; index < text.length; index += size) pieces.push(text.slice(index, index + size));
  return pieces;
}

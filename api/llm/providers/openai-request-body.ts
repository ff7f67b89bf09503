import type {
  ChatCompletionCreateParamsBase,
  ChatCompletionMessageParam,
  ChatCompletionTool,
} from 'openai/resources/chat/completions';
import { ProviderError } from '../provider';
import type { ChatMessage, CompletionRequest, ThinkingMode, ToolDefinition } from '../provider';

/** What the provider's settings add to every request body. */
export interface OpenAIRequestDefaults {
  model: string;
  /** Default `max_tokens` when a request names none. */
  maxOutputTokens?: number;
  /** Sent as Ark's `thinking: {type}` (LLM_THINKING); unset = the model's default. */
  thinking?: ThinkingMode;
}

/** A completion request as an OpenAI chat-completions body (without `stream`, which the caller adds). */
export function toRequestBody(
  request: CompletionRequest,
  defaults: OpenAIRequestDefaults,
): ChatCompletionCreateParamsBase {
  const maxTokens = request.maxTokens ?? defaults.maxOutputTokens;
  return {
    // A caller's own parameters first: the model, the messages and what Troupe controls win.
    ...(request.extra as Partial<ChatCompletionCreateParamsBase> | undefined),
    model: defaults.model,
    messages: toOpenAIMessages(request.messages),
    ...(request.tools?.length ? { tools: toOpenAITools(request.tools) } : {}),
    ...(maxTokens !== undefined ? { max_tokens: maxTokens } : {}),
    ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
    // Ark's own field (the SDK sends unknown fields as given); other servers see it only when set.
    ...(defaults.thinking ? { thinking: { type: defaults.thinking } } : {}),
  } as ChatCompletionCreateParamsBase;
}

/** Our messages in OpenAI's wire format (tool calls on assistant messages, tool_call_id on results). */
export function toOpenAIMessages(messages: ChatMessage[]): ChatCompletionMessageParam[] {
  return messages.map((message): ChatCompletionMessageParam => {
    switch (message.role) {
      case 'system':
        return { role: 'system', content: message.content };
      case 'user':
        return { role: 'user', content: message.content };
      case 'assistant':
        if (message.toolCalls?.length) {
          return {
            role: 'assistant',
            content: message.content === '' ? null : message.content,
            tool_calls: message.toolCalls.map((call) => ({
              id: call.id,
              type: 'function' as const,
              function: { name: call.name, arguments: call.arguments },
            })),
          };
        }
        return { role: 'assistant', content: message.content };
      case 'tool':
        if (!message.toolCallId) throw new ProviderError('bad_request', 'A tool message has no toolCallId');
        return { role: 'tool', tool_call_id: message.toolCallId, content: message.content };
    }
  });
}

function toOpenAITools(tools: ToolDefinition[]): ChatCompletionTool[] {
  return tools.map((tool) => ({
    type: 'function' as const,
    function: { name: tool.name, description: tool.description, parameters: tool.parameters },
  }));
}

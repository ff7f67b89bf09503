import { z } from 'zod';
import { AppError } from '../errors';
import type { ChatMessage, CompletionRequest, ToolDefinition } from '../llm/provider';

/**
 * The body of `POST /v1/chat/completions`, as OpenAI's API defines it, validated with zod, and
 * its translation into the provider port's CompletionRequest. Text content only (strings or text
 * parts); one choice (`n` 1). Parameters Troupe does not act on itself are passed to the provider
 * as they are (PASSED_THROUGH); other unknown fields are ignored, as OpenAI-compatible servers do.
 */

/** Request fields handed to the provider unchanged (CompletionRequest.extra). */
export const PASSED_THROUGH = [
  'top_p',
  'stop',
  'seed',
  'response_format',
  'tool_choice',
  'presence_penalty',
  'frequency_penalty',
  'logit_bias',
  'user',
  'parallel_tool_calls',
  'reasoning_effort',
  'thinking',
] as const;

const textPart = z.object({ type: z.literal('text'), text: z.string() });
const content = z.union(
  [z.string(), z.array(textPart, { error: 'must be a string or a list of text parts' })],
  {
    error: 'must be a string or a list of text parts (images are not supported)',
  },
);

const toolCall = z.object({
  id: z.string(),
  type: z.literal('function').default('function'),
  function: z.object({ name: z.string().min(1), arguments: z.string() }),
});

const message = z.discriminatedUnion(
  'role',
  [
    z.object({ role: z.enum(['system', 'developer']), content }),
    z.object({ role: z.literal('user'), content }),
    z.object({
      role: z.literal('assistant'),
      content: content.nullish(),
      tool_calls: z.array(toolCall).optional(),
    }),
    z.object({ role: z.literal('tool'), content, tool_call_id: z.string().min(1) }),
  ],
  { error: 'must have a role of system, developer, user, assistant or tool' },
);

const tool = z.object({
  type: z.literal('function', { error: 'must be "function"' }),
  function: z.object({
    name: z.string().regex(/^[\w-]{1,64}$/, 'must be 1–64 letters, digits, "_" or "-"'),
    description: z.string().optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
  }),
});

export const completionBody = z.object(
  {
    model: z.string({ error: 'is required' }).min(1, 'is required'),
    messages: z
      .array(message, { error: 'must be a list of messages' })
      .min(1, 'must hold at least one message'),
    stream: z.boolean({ error: 'must be true or false' }).nullish(),
    stream_options: z.object({ include_usage: z.boolean().optional() }).nullish(),
    tools: z.array(tool).optional(),
    temperature: z.number().min(0).max(2).nullish(),
    max_tokens: z.number().int().min(1).nullish(),
    max_completion_tokens: z.number().int().min(1).nullish(),
    n: z.literal(1, { error: 'must be 1: Troupe returns one choice' }).nullish(),
    top_p: z.number().min(0).max(1).nullish(),
    stop: z.union([z.string(), z.array(z.string()).max(4)]).nullish(),
    seed: z.number().int().nullish(),
    response_format: z.object({ type: z.string() }).loose().nullish(),
    tool_choice: z.union([z.enum(['none', 'auto', 'required']), z.object({}).loose()]).nullish(),
    presence_penalty: z.number().min(-2).max(2).nullish(),
    frequency_penalty: z.number().min(-2).max(2).nullish(),
    logit_bias: z.record(z.string(), z.number()).nullish(),
    user: z.string().max(256).nullish(),
    parallel_tool_calls: z.boolean().nullish(),
    reasoning_effort: z.string().nullish(),
    thinking: z.object({ type: z.string() }).loose().nullish(),
  },
  { error: 'must be a JSON object' },
);

export type CompletionBody = z.output<typeof completionBody>;

/** Parses the body; a bad one is `invalid_request` naming the field. */
export function parseCompletionBody(value: unknown): CompletionBody {
  const result = completionBody.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue.path
    .map((part) => (typeof part === 'number' ? `[${part}]` : `.${String(part)}`))
    .join('');
  throw new AppError('invalid_request', `${field.replace(/^\./, '') || 'body'}: ${issue.message}`);
}

function text(value: z.output<typeof content> | null | undefined): string {
  if (value == null) return '';
  return typeof value === 'string' ? value : value.map((part) => part.text).join('');
}

/** The messages in the provider port's form (developer counts as system). */
export function toChatMessages(body: CompletionBody): ChatMessage[] {
  return body.messages.map((entry): ChatMessage => {
    switch (entry.role) {
      case 'system':
      case 'developer':
        return { role: 'system', content: text(entry.content) };
      case 'user':
        return { role: 'user', content: text(entry.content) };
      case 'assistant':
        return {
          role: 'assistant',
          content: text(entry.content),
          ...(entry.tool_calls?.length
            ? {
                toolCalls: entry.tool_calls.map((call) => ({
                  id: call.id,
                  name: call.function.name,
                  arguments: call.function.arguments,
                })),
              }
            : {}),
        };
      case 'tool':
        return { role: 'tool', content: text(entry.content), toolCallId: entry.tool_call_id };
    }
  });
}

/** One provider call for a pass-through model. */
export function toCompletionRequest(body: CompletionBody): CompletionRequest {
  const tools: ToolDefinition[] | undefined = body.tools?.map((entry) => ({
    name: entry.function.name,
    description: entry.function.description ?? '',
    parameters: entry.function.parameters ?? { type: 'object', properties: {} },
  }));
  const extra: Record<string, unknown> = {};
  for (const name of PASSED_THROUGH) {
    const value = body[name];
    if (value !== undefined && value !== null) extra[name] = value;
  }
  const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? undefined;
  return {
    messages: toChatMessages(body),
    ...(tools?.length ? { tools } : {}),
    ...(maxTokens !== undefined ? { maxTokens } : {}),
    ...(body.temperature != null ? { temperature: body.temperature } : {}),
    stream: body.stream === true,
    ...(Object.keys(extra).length > 0 ? { extra } : {}),
  };
}

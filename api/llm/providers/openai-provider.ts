import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError } from 'openai';
import type {
  ChatCompletionChunk,
  ChatCompletionCreateParamsBase,
  ChatCompletionMessageParam,
  ChatCompletionTool,
} from 'openai/resources/chat/completions';
import { ProviderError, estimatePromptTokens, estimateTokens } from '../provider';
import type {
  ChatMessage,
  CompletionOptions,
  CompletionRequest,
  CompletionResult,
  Provider,
  ToolCall,
  ThinkingMode,
  ToolDefinition,
  Usage,
} from '../provider';
import { classifyProviderError } from '../provider-errors';
import { parseRetryAfter } from '../retry-after';
import { providerAbortError } from './abort-error';
import { ExplicitOpenAIClient } from './explicit-openai-client';
import { readChatStream } from './chat-stream-reader';
import { createHttpFetch, type HttpFetch } from './http-fetch';

export interface OpenAIProviderOptions {
  /** e.g. https://api.openai.com/v1 or https://ark.cn-beijing.volces.com/api/v3 */
  baseUrl: string;
  /** Sent as `Authorization: Bearer`; local servers (vLLM, Ollama, sim-llm) accept any value. */
  apiKey?: string;
  /** The model, or on Volcengine Ark the endpoint id (ep-…) or model id. */
  model: string;
  /** Default `max_tokens` when a request names none. */
  maxOutputTokens?: number;
  /**
   * Reads "now" as wall time for Retry-After HTTP dates (default Date.now): a date names wall time,
   * which the scheduler's monotonic clock may have drifted from.
   */
  wallNow?: () => number;
  /** Stream the answer (default). Off: one non-streamed call; onDelta then receives the whole text once. */
  stream?: boolean;
  /** The SDK's own per-request timeout, ms; the scheduler's deadline normally aborts first. */
  timeoutMs?: number;
  /** A fetch implementation for the SDK (tests, proxies); default: Node's HTTP client with keep-alive (http-fetch.ts). */
  fetch?: typeof fetch;
  /** Sent as Ark's `thinking: {type}` on every call (LLM_THINKING); unset = the model's default. */
  thinking?: ThinkingMode;
  /**
   * Ark's `stream_options.chunk_include_usage`: the cumulative usage on every chunk, so even a
   * stream cut short knows its tokens (LLM_CHUNK_INCLUDE_USAGE; other servers may reject it).
   */
  chunkIncludeUsage?: boolean;
}

/** What a thinking model's chunk adds to OpenAI's delta (Ark, DeepSeek: `reasoning_content`; vLLM: `reasoning`). */
interface ReasoningDelta {
  reasoning_content?: string | null;
  reasoning?: string | null;
}

/** Usage with the details thinking models and caches report. */
interface UsageWithDetails {
  prompt_tokens: number;
  completion_tokens: number;
  completion_tokens_details?: { reasoning_tokens?: number } | null;
}

/**
 * Any OpenAI-compatible chat-completions API (OpenAI, Volcengine Ark, DeepSeek, vLLM, Ollama) on the
 * official SDK. The SDK's retries are off: the scheduler alone retries (docs/ARCHITECTURE.md §7), so every
 * failure comes back at once as a ProviderError it can classify.
 */
export class OpenAIProvider implements Provider {
  readonly name = 'openai';

  private readonly client: OpenAI;
  private readonly model: string;
  private readonly maxOutputTokens?: number;
  private readonly wallNow: () => number;
  private readonly stream: boolean;
  private readonly httpFetch?: HttpFetch;
  private readonly thinking?: ThinkingMode;
  private readonly chunkIncludeUsage: boolean;

  constructor(options: OpenAIProviderOptions) {
    this.model = options.model;
    this.thinking = options.thinking;
    this.chunkIncludeUsage = options.chunkIncludeUsage ?? false;
    this.maxOutputTokens = options.maxOutputTokens;
    this.wallNow = options.wallNow ?? Date.now;
    this.stream = options.stream ?? true;
    if (!options.fetch) this.httpFetch = createHttpFetch();
    // Every option the SDK would otherwise read from process.env is given explicitly (config/ is
    // the only reader of the environment).
    this.client = new ExplicitOpenAIClient({
      baseURL: options.baseUrl,
      apiKey: options.apiKey || 'not-needed',
      maxRetries: 0,
      timeout: options.timeoutMs ?? 10 * 60_000,
      fetch: options.fetch ?? this.httpFetch!.fetch,
    });
  }

  /**
   * Streamed, every chunk is reported to `onProgress`, the first being the response's first byte;
   * answered in one piece, the first byte is the last, and no first-byte timeout can apply.
   */
  get reportsFirstByte(): boolean {
    return this.stream;
  }

  async close(): Promise<void> {
    this.httpFetch?.close();
  }

  async complete(request: CompletionRequest, options: CompletionOptions): Promise<CompletionResult> {
    const { signal } = options;
    if (signal.aborted) throw providerAbortError(signal);
    const body = this.toRequestBody(request);
    // Errors thrown by the caller's onDelta are the caller's own: they pass through unclassified.
    let callbackError: { error: unknown } | undefined;
    const onDelta = (text: string) => {
      try {
        options.onDelta?.(text);
      } catch (error) {
        callbackError = { error };
        throw error;
      }
    };
    try {
      // A caller that reads no deltas (a JSON chat) gets one non-streamed call: no per-token work.
      return this.stream && request.stream !== false
        ? await this.streamed(request, body, options, onDelta)
        : await this.single(request, body, options, onDelta);
    } catch (error) {
      if (callbackError && callbackError.error === error) throw error;
      if (signal.aborted) throw providerAbortError(signal);
      throw toProviderError(error, this.wallNow());
    }
  }

  private toRequestBody(request: CompletionRequest): ChatCompletionCreateParamsBase {
    const maxTokens = request.maxTokens ?? this.maxOutputTokens;
    return {
      // A caller's own parameters first: the model, the messages and what Troupe controls win.
      ...(request.extra as Partial<ChatCompletionCreateParamsBase> | undefined),
      model: this.model,
      messages: toOpenAIMessages(request.messages),
      ...(request.tools?.length ? { tools: toOpenAITools(request.tools) } : {}),
      ...(maxTokens !== undefined ? { max_tokens: maxTokens } : {}),
      ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
      // Ark's own field (the SDK sends unknown fields as given); other servers see it only when set.
      ...(this.thinking ? { thinking: { type: this.thinking } } : {}),
    } as ChatCompletionCreateParamsBase;
  }

  private async streamed(
    request: CompletionRequest,
    body: ChatCompletionCreateParamsBase,
    options: CompletionOptions,
    onDelta: (text: string) => void,
  ): Promise<CompletionResult> {
    const { signal } = options;
    // include_usage: the final chunk carries the real usage, so TPM settles on real tokens.
    const streamOptions = this.chunkIncludeUsage
      ? { include_usage: true, chunk_include_usage: true }
      : { include_usage: true };
    // The SDK sends the request and turns an error status into its APIError; the body is read
    // here (chat-stream-reader.ts), one synchronous callback per chunk.
    const response = await this.client.chat.completions
      .create({ ...body, stream: true, stream_options: streamOptions }, { signal })
      .asResponse();
    const assembler = new ToolCallAssembler();
    let text = '';
    let reasoning = '';
    let finishReason: string | null = null;
    let usage: UsageWithDetails | null | undefined;
    await readChatStream(response.body, response.headers, (data) => {
      const chunk = data as ChatCompletionChunk;
      options.onProgress?.();
      if (chunk.usage) {
        usage = chunk.usage;
        options.onUsage?.(toUsage(usage, request, '', []));
      }
      for (const choice of chunk.choices ?? []) {
        if ((choice.index ?? 0) !== 0) continue;
        const delta = choice.delta ?? {};
        const thought = reasoningOf(delta as ReasoningDelta);
        if (thought !== '') {
          reasoning += thought;
          options.onReasoning?.(thought);
        }
        if (typeof delta.content === 'string' && delta.content !== '') {
          text += delta.content;
          onDelta(delta.content);
        }
        for (const toolDelta of delta.tool_calls ?? []) assembler.add(toolDelta);
        if (choice.finish_reason) finishReason = choice.finish_reason;
      }
    });
    // A body cut by an abort can end quietly; a clean-looking end must not hide it.
    if (signal.aborted) throw providerAbortError(signal);
    if (!finishReason) {
      // A stream that stops without a finish reason was cut off: never report it as a clean answer.
      throw new ProviderError('network', 'The provider stream ended before the model finished');
    }
    const toolCalls = assembler.toolCalls();
    return {
      text,
      toolCalls,
      usage: toUsage(usage, request, text + reasoning, toolCalls),
      finishReason: toFinishReason(finishReason, toolCalls),
      ...(reasoning !== '' ? { reasoning } : {}),
    };
  }

  private async single(
    request: CompletionRequest,
    body: ChatCompletionCreateParamsBase,
    options: CompletionOptions,
    onDelta: (text: string) => void,
  ): Promise<CompletionResult> {
    const response = await this.client.chat.completions.create(
      { ...body, stream: false },
      { signal: options.signal },
    );
    options.onProgress?.();
    const choice = response.choices[0];
    if (!choice) throw new ProviderError('server', 'The provider answered with no choices');
    const text = choice.message.content ?? '';
    const reasoning = reasoningOf(choice.message as ReasoningDelta);
    if (reasoning !== '') options.onReasoning?.(reasoning);
    const toolCalls: ToolCall[] = [];
    for (const call of choice.message.tool_calls ?? []) {
      if (call.type === 'function')
        toolCalls.push({ id: call.id, name: call.function.name, arguments: call.function.arguments });
    }
    if (text !== '') onDelta(text);
    return {
      text,
      toolCalls,
      usage: toUsage(response.usage, request, text + reasoning, toolCalls),
      finishReason: toFinishReason(choice.finish_reason, toolCalls),
      ...(reasoning !== '' ? { reasoning } : {}),
    };
  }
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

type ToolCallDelta = NonNullable<ChatCompletionChunk.Choice.Delta['tool_calls']>[number];

/** Joins streamed tool-call fragments: the first fragment of a call has its id and name, later ones append arguments. */
export class ToolCallAssembler {
  private readonly calls: { id: string; name: string; arguments: string }[] = [];
  private readonly byIndex = new Map<number, number>();

  add(delta: ToolCallDelta): void {
    // Some compatible servers omit `index`; then a new id starts a new call and a missing one continues the last.
    let position = delta.index !== undefined ? this.byIndex.get(delta.index) : undefined;
    if (position === undefined && delta.index === undefined && !delta.id && this.calls.length > 0) {
      position = this.calls.length - 1;
    }
    if (position === undefined) {
      position = this.calls.push({ id: '', name: '', arguments: '' }) - 1;
      this.byIndex.set(delta.index ?? position, position);
    }
    const call = this.calls[position];
    if (delta.id) call.id = delta.id;
    if (delta.function?.name) call.name += delta.function.name;
    if (delta.function?.arguments) call.arguments += delta.function.arguments;
  }

  toolCalls(): ToolCall[] {
    return this.calls
      .filter((call) => call.name !== '')
      .map((call, index) => ({
        id: call.id || `call_${index}`,
        name: call.name,
        arguments: call.arguments || '{}',
      }));
  }
}

/** A delta's (or message's) reasoning text; '' when it carries none. */
function reasoningOf(delta: ReasoningDelta): string {
  const value = delta.reasoning_content ?? delta.reasoning;
  return typeof value === 'string' ? value : '';
}

/**
 * The provider's usage (its completion tokens include a thinking model's reasoning, which TPM
 * counts like the answer), or an estimate over everything the model wrote, reasoning included.
 */
function toUsage(
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

function toFinishReason(
  reason: string | null | undefined,
  toolCalls: ToolCall[],
): CompletionResult['finishReason'] {
  if (toolCalls.length > 0) return 'tool_calls';
  if (reason === 'stop' || reason === 'length') return reason;
  if (reason === 'tool_calls' || reason === 'function_call') return 'tool_calls';
  return 'other';
}

/**
 * Any failure of the SDK as a ProviderError, classified by the providers' vocabulary
 * (provider-errors.ts): the error body's code decides before the status does.
 */
export function toProviderError(error: unknown, now: number): ProviderError {
  if (error instanceof ProviderError) return error;
  if (error instanceof APIConnectionTimeoutError) {
    return new ProviderError('network', 'The provider did not answer in time', { cause: error });
  }
  if (error instanceof APIConnectionError) {
    return new ProviderError('network', `Could not reach the provider: ${describeCause(error)}`, {
      cause: error,
    });
  }
  if (error instanceof APIError) {
    const status = error.status;
    const body = (error.error ?? {}) as { code?: unknown; type?: unknown; param?: unknown };
    const code = stringOrUndefined(error.code) ?? stringOrUndefined(body.code);
    const type = stringOrUndefined(error.type) ?? stringOrUndefined(body.type);
    const param = stringOrUndefined(error.param) ?? stringOrUndefined(body.param);
    const retryAfterMs = parseRetryAfter(error.headers, now);
    const label = `${status ?? 'stream'} ${code ?? type ?? ''}`.trim();
    const message = `Provider error ${label}: ${error.message}`;
    const { kind, unusable } = classifyProviderError({ status, code, type, param, message: error.message });
    return new ProviderError(kind, message, {
      status,
      retryAfterMs,
      providerCode: code ?? type,
      ...(unusable ? { unusable } : {}),
      cause: error,
    });
  }
  if (error instanceof SyntaxError) {
    return new ProviderError('server', `The provider sent a malformed response: ${error.message}`, {
      cause: error,
    });
  }
  // fetch's "terminated" / socket errors when the connection drops mid-stream.
  return new ProviderError('network', `Provider connection failed: ${describeCause(error)}`, {
    cause: error,
  });
}

function describeCause(error: unknown): string {
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  return cause instanceof Error ? cause.message : String(cause);
}

function stringOrUndefined(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

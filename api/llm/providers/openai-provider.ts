import OpenAI from 'openai';
import type { ChatCompletionChunk, ChatCompletionCreateParamsBase } from 'openai/resources/chat/completions';
import { ProviderError } from '../provider';
import type {
  CompletionOptions,
  CompletionRequest,
  CompletionResult,
  Provider,
  ToolCall,
  ThinkingMode,
} from '../provider';
import { providerAbortError } from './abort-error';
import { ExplicitOpenAIClient } from './explicit-openai-client';
import { readChatStream } from './chat-stream-reader';
import { createHttpFetch, type HttpFetch } from './http-fetch';
import { toProviderError } from './openai-error-mapping';
import { toRequestBody } from './openai-request-body';
import {
  reasoningOf,
  toFinishReason,
  toUsage,
  type ReasoningDelta,
  type UsageWithDetails,
} from './openai-response-parts';
import { ToolCallAssembler } from './tool-call-assembler';

export { toProviderError } from './openai-error-mapping';
export { toOpenAIMessages } from './openai-request-body';
export { ToolCallAssembler } from './tool-call-assembler';

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

/**
 * Any OpenAI-compatible chat-completions API (OpenAI, Volcengine Ark, DeepSeek, vLLM, Ollama) on the
 * official SDK. The SDK's retries are off: the scheduler alone retries (docs/ARCHITECTURE.md §7), so every
 * failure comes back at once as a ProviderError it can classify. The request body is built in
 * openai-request-body.ts, errors are mapped in openai-error-mapping.ts; this reads the answer.
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
    const body = toRequestBody(request, {
      model: this.model,
      maxOutputTokens: this.maxOutputTokens,
      thinking: this.thinking,
    });
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

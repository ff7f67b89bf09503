import { randomUUID } from 'node:crypto';
import type { Response } from 'express';
import type { AppError } from '../errors';
import type { CompletionResult, ToolCall, Usage } from '../llm/provider';
import { openAIErrorBody } from './openai-errors';

/**
 * OpenAI's wire format for one completion: the `chat.completion` object of a non-streamed answer,
 * and the SSE stream of `chat.completion.chunk` objects (`data: {…}` blocks ending with
 * `data: [DONE]`) of a streamed one. A stream that fails after it started ends with a
 * `data: {"error":{…}}` block and no `[DONE]`, which OpenAI's SDKs raise as an error.
 */

export interface CompletionIdentity {
  id: string;
  model: string;
  /** Unix seconds. */
  created: number;
}

export function newIdentity(model: string): CompletionIdentity {
  return { id: `chatcmpl-${randomUUID()}`, model, created: Math.floor(Date.now() / 1000) };
}

type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter';

export function finishReasonOf(result: Pick<CompletionResult, 'finishReason'>): FinishReason {
  return result.finishReason === 'other' ? 'stop' : result.finishReason;
}

export function usageObject(usage: Usage) {
  return {
    prompt_tokens: usage.promptTokens,
    completion_tokens: usage.completionTokens,
    total_tokens: usage.promptTokens + usage.completionTokens,
  };
}

function toolCallsObject(calls: ToolCall[]) {
  return calls.map((call, index) => ({
    index,
    id: call.id,
    type: 'function' as const,
    function: { name: call.name, arguments: call.arguments },
  }));
}

/** The non-streamed answer. `extension` (the troupe model's agents) rides in a `troupe` field. */
export function completionObject(
  identity: CompletionIdentity,
  result: Pick<CompletionResult, 'text' | 'toolCalls' | 'usage' | 'finishReason'>,
  extension?: unknown,
) {
  const toolCalls = result.toolCalls.length > 0 ? toolCallsObject(result.toolCalls) : undefined;
  return {
    id: identity.id,
    object: 'chat.completion',
    created: identity.created,
    model: identity.model,
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: result.text === '' && toolCalls ? null : result.text,
          ...(toolCalls ? { tool_calls: toolCalls.map(({ index: _index, ...call }) => call) } : {}),
        },
        finish_reason: finishReasonOf(result),
        logprobs: null,
      },
    ],
    usage: usageObject(result.usage),
    ...(extension !== undefined ? { troupe: extension } : {}),
  };
}

/** Writes one streamed completion to an HTTP response; nothing is written after it ended. */
export class CompletionStream {
  private opened = false;
  private ended = false;

  constructor(
    private readonly res: Response,
    private readonly identity: CompletionIdentity,
  ) {}

  get isOpen(): boolean {
    return this.opened;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /** Sends the headers and the first chunk (the assistant's role); idempotent. */
  open(): void {
    if (this.opened || this.ended) return;
    this.opened = true;
    this.res.status(200);
    this.res.set({
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      Connection: 'keep-alive',
      // nginx must pass chunks on at once, not buffer the answer.
      'X-Accel-Buffering': 'no',
    });
    this.res.flushHeaders();
    this.chunk({ role: 'assistant', content: '' });
  }

  content(text: string): void {
    if (text === '') return;
    this.open();
    this.chunk({ content: text });
  }

  /** The tool calls, once they are complete (one chunk; SDKs assemble by index either way). */
  toolCalls(calls: ToolCall[]): void {
    if (calls.length === 0) return;
    this.open();
    this.chunk({ tool_calls: toolCallsObject(calls) });
  }

  /** The last choice chunk, then (if asked) the usage chunk with empty choices, then [DONE]. */
  finish(result: Pick<CompletionResult, 'usage' | 'finishReason'>, includeUsage: boolean): void {
    this.open();
    this.chunk({}, finishReasonOf(result));
    if (includeUsage) this.write({ ...this.base(), choices: [], usage: usageObject(result.usage) });
    this.writeRaw('data: [DONE]\n\n');
    this.end();
  }

  /** A chunk with no choice for OpenAI clients and the troupe model's progress in `troupe`. */
  extension(data: unknown): void {
    this.open();
    this.write({ ...this.base(), choices: [], troupe: data });
  }

  /** Ends a started stream with an error object (never [DONE]: the answer is not complete). */
  fail(error: AppError): void {
    this.open();
    this.write(openAIErrorBody(error));
    this.end();
  }

  /** A comment line that keeps proxies from closing a quiet stream; SSE parsers ignore it. */
  heartbeat(): void {
    if (this.opened && !this.ended) this.writeRaw(': ping\n\n');
  }

  private chunk(delta: Record<string, unknown>, finishReason: FinishReason | null = null): void {
    this.write({
      ...this.base(),
      choices: [{ index: 0, delta, finish_reason: finishReason, logprobs: null }],
    });
  }

  private base() {
    const { id, created, model } = this.identity;
    return { id, object: 'chat.completion.chunk', created, model };
  }

  private write(value: unknown): void {
    this.writeRaw(`data: ${JSON.stringify(value)}\n\n`);
  }

  private writeRaw(text: string): void {
    if (this.ended || this.res.writableEnded || this.res.destroyed) return;
    this.res.write(text);
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    if (!this.res.writableEnded) this.res.end();
  }
}

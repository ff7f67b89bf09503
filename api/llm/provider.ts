/**
 * The provider port: one streaming chat-completion call. Implementations: the in-process simulated
 * model (`sim`) and any OpenAI-compatible HTTP API (`openai`). The call path wraps every call; a
 * provider never retries on its own: the retry policy is the one retry loop, so that every retry
 * is queued and counted against the quota (docs/ARCHITECTURE.md, section 3).
 */

export type ChatRole = 'system' | 'user' | 'assistant' | 'tool';

export interface ToolCall {
  id: string;
  name: string;
  /** The raw JSON text the model produced; the tool executor validates it. */
  arguments: string;
}

export interface ChatMessage {
  role: ChatRole;
  content: string;
  /** On assistant messages that asked for tools. */
  toolCalls?: ToolCall[];
  /** On tool messages: the call this message answers. */
  toolCallId?: string;
}

export interface ToolDefinition {
  name: string;
  description: string;
  /** JSON Schema of the arguments object, as OpenAI's `tools[].function.parameters`. */
  parameters: Record<string, unknown>;
}

export interface CompletionRequest {
  messages: ChatMessage[];
  tools?: ToolDefinition[];
  maxTokens?: number;
  temperature?: number;
  /**
   * false: nobody reads this call's tokens as they come (a JSON chat), so the provider may answer
   * in one piece — onDelta then receives the whole text once. Default: streamed.
   */
  stream?: boolean;
  /**
   * Further request parameters passed to an OpenAI-compatible provider as they are (top_p, stop,
   * seed, response_format, tool_choice, …): the gateway's callers (api/gateway/) set them; agents
   * do not. The simulated model ignores them.
   */
  extra?: Readonly<Record<string, unknown>>;
}

export interface Usage {
  promptTokens: number;
  completionTokens: number;
}

export interface CompletionResult {
  text: string;
  toolCalls: ToolCall[];
  usage: Usage;
  finishReason: 'stop' | 'length' | 'tool_calls' | 'other';
}

export interface CompletionOptions {
  /** Aborting stops the call at once: the HTTP request is cancelled, the promise rejects. */
  signal: AbortSignal;
  /** Streamed text as it arrives. The first call marks the point after which no retry may happen. */
  onDelta?: (text: string) => void;
}

export interface Provider {
  readonly name: string;
  complete(request: CompletionRequest, options: CompletionOptions): Promise<CompletionResult>;
  close?(): Promise<void>;
}

/**
 * How a provider call failed, in the scheduler's terms. `rate_limited` and `server` are retryable
 * before the first streamed byte; `retryAfterMs` carries the provider's Retry-After when given.
 */
export type ProviderFailureKind = 'rate_limited' | 'server' | 'network' | 'bad_request' | 'auth';

export class ProviderError extends Error {
  constructor(
    readonly kind: ProviderFailureKind,
    message: string,
    readonly options: { status?: number; retryAfterMs?: number; providerCode?: string; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'ProviderError';
  }

  get retryable(): boolean {
    return this.kind === 'rate_limited' || this.kind === 'server' || this.kind === 'network';
  }

  get retryAfterMs(): number | undefined {
    return this.options.retryAfterMs;
  }
}

/** Rough token estimate (~4 characters a token; CJK characters count one each) for TPM reservations. */
export function estimateTokens(text: string): number {
  let cjk = 0;
  // A char-code loop, not a regular expression per character: this runs over every prompt of every call.
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if ((code >= 0x3000 && code <= 0x9fff) || (code >= 0xac00 && code <= 0xd7af)) cjk++;
  }
  return Math.ceil((text.length - cjk) / 4) + cjk;
}

export function estimatePromptTokens(request: CompletionRequest): number {
  let total = 0;
  for (const message of request.messages) total += 4 + estimateTokens(message.content);
  for (const tool of request.tools ?? []) total += estimateTokens(JSON.stringify(tool));
  return total;
}

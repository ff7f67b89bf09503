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
  /** The whole output, a thinking model's reasoning included (it counts against TPM like the answer). */
  completionTokens: number;
  /** Of `completionTokens`, the reasoning's, when the provider reports them. */
  reasoningTokens?: number;
}

/** A thinking model's mode, sent as Ark's `thinking: {type}` (unset: the model's own default). */
export type ThinkingMode = 'enabled' | 'disabled' | 'auto';

export interface CompletionResult {
  text: string;
  toolCalls: ToolCall[];
  usage: Usage;
  finishReason: 'stop' | 'length' | 'tool_calls' | 'other';
  /** A thinking model's reasoning, kept apart: never part of `text`, nor of the next agent's input. */
  reasoning?: string;
}

export interface CompletionOptions {
  /** Aborting stops the call at once: the HTTP request is cancelled, the promise rejects. */
  signal: AbortSignal;
  /** Streamed text as it arrives. The first call marks the point after which no retry may happen. */
  onDelta?: (text: string) => void;
  /** A thinking model's reasoning as it streams (`reasoning_content`): never part of the answer. */
  onReasoning?: (text: string) => void;
  /**
   * Every piece of the response as it arrives (a chunk of any kind: role, reasoning, text, tool
   * call, usage): the first one is the call's first byte, and a call still reasoning is progressing.
   */
  onProgress?: () => void;
  /**
   * Usage as the provider reports it while streaming (cumulative: Ark's `chunk_include_usage`), so
   * a call cut short still settles its TPM reservation on what it really used.
   */
  onUsage?: (usage: Usage) => void;
}

export interface Provider {
  readonly name: string;
  /**
   * True when `onProgress` reports the response's first byte (an HTTP provider): only such a
   * provider is timed on it (policies/first-byte-timeout-policy.ts).
   */
  readonly reportsFirstByte?: boolean;
  complete(request: CompletionRequest, options: CompletionOptions): Promise<CompletionResult>;
  close?(): Promise<void>;
}

/**
 * How a provider call failed, in the scheduler's terms (api/llm/provider-errors.ts maps every code
 * the providers document to one of these; docs/PROVIDERS-GUIDE.md says what each does):
 * - `rate_limited`: a transient 429 (RPM, TPM, concurrency): AIMD, a hold, retried;
 * - `burst`: a transient refusal of a sudden surge (Ark's RequestBurstTooFast / ServerOverloaded):
 *   the start rate drops and ramps back, retried;
 * - `server`, `network`: the provider is in trouble: retried, counted by the breaker;
 * - `timeout`: no first byte within the first-byte timeout: counted by the breaker, not retried on
 *   the same endpoint (another attempt would likely hang as long);
 * - `quota_exhausted`, `auth`, `not_found`: the endpoint refuses every call until a person acts
 *   (`unusable` names why): never retried, never fed to AIMD; the breaker marks it unavailable;
 * - `bad_request`: this request is wrong (not the endpoint): not retried, no verdict on anything —
 *   unless `unusable` says the endpoint's own settings are what the provider rejects.
 */
export type ProviderFailureKind =
  | 'rate_limited'
  | 'burst'
  | 'server'
  | 'network'
  | 'timeout'
  | 'quota_exhausted'
  | 'auth'
  | 'not_found'
  | 'bad_request';

/** Why an endpoint refuses every call until a person acts. */
export type UnusableReason =
  | 'quota_exhausted'
  | 'spending_limit'
  | 'account_overdue'
  | 'auth'
  | 'model_not_found'
  | 'endpoint_closed'
  | 'misconfigured';

export interface ProviderErrorOptions {
  status?: number;
  retryAfterMs?: number;
  /** The provider's own code (Ark's `error.code`, OpenAI's `code` or `type`). */
  providerCode?: string;
  /** Set when the endpoint is unusable until a person acts. */
  unusable?: UnusableReason;
  cause?: unknown;
}

export class ProviderError extends Error {
  constructor(
    readonly kind: ProviderFailureKind,
    message: string,
    readonly options: ProviderErrorOptions = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'ProviderError';
  }

  /** Worth another attempt on the same endpoint (before the first streamed byte). */
  get retryable(): boolean {
    if (this.options.unusable) return false;
    return (
      this.kind === 'rate_limited' ||
      this.kind === 'burst' ||
      this.kind === 'server' ||
      this.kind === 'network'
    );
  }

  /**
   * Another endpoint may serve the same request (a fallback hook: routes with several endpoints try
   * the next one, before any token reached anyone). A bad request would be as bad elsewhere.
   */
  get fallbackable(): boolean {
    return this.options.unusable !== undefined || this.kind !== 'bad_request';
  }

  /** Why the endpoint refuses every call until a person acts; undefined for a passing failure. */
  get unusable(): UnusableReason | undefined {
    return this.options.unusable;
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

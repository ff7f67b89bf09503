/**
 * The one registry of Troupe's error codes. Every HTTP error body and every stream `error` event is
 * built from an AppError, so clients can rely on the code list staying exact. The README's HTTP API
 * section lists the same codes with their statuses; test/api/errors.test.ts keeps the two equal.
 */

export const ERROR_CODES = {
  invalid_request: { status: 400, message: 'The request is invalid' },
  unauthorized: { status: 401, message: 'Missing or wrong credentials' },
  forbidden: { status: 403, message: 'This action is not allowed' },
  not_found: { status: 404, message: 'Not found' },
  request_timeout: { status: 408, message: 'The request body did not arrive in time' },
  payload_too_large: { status: 413, message: 'The request body is too large' },
  user_rate_limited: { status: 429, message: 'Too many requests from this user' },
  headers_too_large: { status: 431, message: 'The request headers are too large' },
  overloaded: { status: 503, message: 'The server is at capacity; retry later' },
  // The codes below normally travel inside a stream's `error` event; the status applies when the
  // same failure ends a JSON (non-streamed) chat.
  queue_timeout: { status: 504, message: 'The LLM call waited in the queue past its deadline' },
  llm_timeout: { status: 504, message: 'The LLM call ran past its deadline' },
  chat_timeout: { status: 504, message: 'The chat ran past its deadline (CHAT_TIMEOUT_MS)' },
  llm_unavailable: { status: 503, message: 'The LLM provider is unavailable' },
  provider_rate_limited: { status: 503, message: 'The LLM provider kept refusing with 429' },
  // Every endpoint the call could use refused for a reason only a person can fix (a used-up quota,
  // a spending limit, an unpaid bill, a refused key, a missing model): no retry can help.
  provider_quota_exhausted: {
    status: 503,
    message: 'The LLM provider refuses every call until its quota, billing or settings are fixed',
  },
  queue_cleared: { status: 503, message: 'An operator cleared the queue' },
  cancelled: { status: 499, message: 'The run was cancelled' },
  // Ends one listener's stream (its run goes on for the others): the client did not keep up.
  slow_reader: { status: 408, message: 'The client read the stream too slowly; this stream was ended' },
  shutting_down: { status: 503, message: 'The server is shutting down' },
  internal: { status: 500, message: 'Internal error' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface ErrorBody {
  /** `estimatedWaitMs` accompanies `overloaded`: how long the work ahead is expected to take. */
  error: { code: ErrorCode; message: string; retryAfterMs?: number; estimatedWaitMs?: number };
}

/** A coded, typed failure. `retryAfterMs` becomes the Retry-After header (rounded up to seconds). */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryAfterMs?: number;
  readonly details?: Record<string, unknown>;

  constructor(
    code: ErrorCode,
    message?: string,
    options: { retryAfterMs?: number; cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message ?? ERROR_CODES[code].message, { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.retryAfterMs = options.retryAfterMs;
    this.details = options.details;
  }

  toBody(): ErrorBody {
    const error: ErrorBody['error'] = { code: this.code, message: this.message };
    if (this.retryAfterMs !== undefined) error.retryAfterMs = Math.max(0, Math.round(this.retryAfterMs));
    const estimatedWaitMs = this.details?.estimatedWaitMs;
    if (typeof estimatedWaitMs === 'number') error.estimatedWaitMs = Math.max(0, Math.round(estimatedWaitMs));
    return { error };
  }
}

export function isAppError(value: unknown): value is AppError {
  return value instanceof AppError;
}

/** Any thrown value as an AppError; unknown failures become `internal` without leaking internals. */
export function toAppError(value: unknown): AppError {
  if (value instanceof AppError) return value;
  if (isAbortError(value)) return new AppError('cancelled', undefined, { cause: value });
  return new AppError('internal', undefined, { cause: value });
}

export function isAbortError(value: unknown): boolean {
  return (
    value instanceof Error &&
    (value.name === 'AbortError' || (value as { code?: unknown }).code === 'ABORT_ERR')
  );
}

/** The error an aborted signal carries, as an AppError (callers abort with an AppError reason). */
export function abortReason(signal: AbortSignal): AppError {
  return signal.reason instanceof AppError ? signal.reason : new AppError('cancelled');
}

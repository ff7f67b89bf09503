import type { NextFunction, Request, Response } from 'express';
import { AppError, toAppError, type ErrorCode } from '../errors';
import type { Logger } from '../logger';

/**
 * Errors of the OpenAI-compatible endpoints in OpenAI's shape, `{"error":{"message","type","code"}}`,
 * so every OpenAI client reads them as it reads OpenAI's own. `code` is Troupe's error code
 * (api/errors.ts); `type` is OpenAI's family for the status.
 *
 * One difference from Troupe's other endpoints: a caller Troupe cannot serve in time gets **429**
 * with Retry-After (seconds, and `retry-after-ms`), not 503, because 429 is what OpenAI SDKs retry
 * on after the header's delay.
 */

export interface OpenAIErrorBody {
  error: { message: string; type: string; code: ErrorCode; param: string | null };
}

/** Codes that mean "not now": the caller should retry after Retry-After. */
const RETRY_LATER: ReadonlySet<ErrorCode> = new Set([
  'overloaded',
  'queue_timeout',
  'user_rate_limited',
  'provider_rate_limited',
]);

/** Retry-After when Troupe has no better figure (a wait that ran out, a full queue). */
const DEFAULT_RETRY_AFTER_MS = 1000;

export function gatewayStatus(error: AppError): number {
  return RETRY_LATER.has(error.code) ? 429 : error.status;
}

function errorType(status: number): string {
  if (status === 400 || status === 404 || status === 413) return 'invalid_request_error';
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 429) return 'rate_limit_error';
  if (status === 499) return 'cancelled';
  return status === 504 ? 'timeout_error' : 'server_error';
}

export function openAIErrorBody(error: AppError): OpenAIErrorBody {
  return {
    error: { message: error.message, type: errorType(gatewayStatus(error)), code: error.code, param: null },
  };
}

/** How long a refused caller should wait, ms; undefined when retrying cannot help. */
export function retryAfterFor(error: AppError): number | undefined {
  if (!RETRY_LATER.has(error.code)) return error.retryAfterMs;
  return Math.max(DEFAULT_RETRY_AFTER_MS, error.retryAfterMs ?? 0);
}

/** Writes an error response (before any byte of a body was sent). */
export function sendOpenAIError(res: Response, value: unknown): void {
  const error = toAppError(value);
  const retryAfterMs = retryAfterFor(error);
  if (retryAfterMs !== undefined) {
    res.set('Retry-After', String(Math.ceil(retryAfterMs / 1000)));
    res.set('retry-after-ms', String(Math.ceil(retryAfterMs)));
  }
  res
    .status(gatewayStatus(error))
    .type('application/json')
    .end(JSON.stringify(openAIErrorBody(error)));
}

/** The /v1 router's error middleware: OpenAI's shape instead of Troupe's. */
export function openAIErrorHandler(logger: Logger) {
  return (value: unknown, _req: Request, res: Response, next: NextFunction): void => {
    if (res.headersSent) {
      next(value);
      return;
    }
    const error = parserError(value) ?? toAppError(value);
    if (error.code === 'internal') logger.error({ err: value }, 'gateway request failed');
    sendOpenAIError(res, error);
  };
}

/** express.json's own errors (bad JSON, too large) as coded errors. */
function parserError(value: unknown): AppError | undefined {
  const type = (value as { type?: unknown } | undefined)?.type;
  if (type === 'entity.parse.failed') return new AppError('invalid_request', 'The body is not valid JSON');
  if (type === 'entity.too.large') return new AppError('payload_too_large');
  return undefined;
}

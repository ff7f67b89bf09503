import { APIConnectionError, APIConnectionTimeoutError, APIError } from 'openai';
import { ProviderError } from '../provider';
import { classifyProviderError } from '../provider-errors';
import { parseRetryAfter } from '../retry-after';

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

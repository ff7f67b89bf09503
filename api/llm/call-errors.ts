import type { ErrorCode } from '../errors';
import type { RateLimitKind } from './aimd';
import type { ProviderError } from './provider';
import type { CallOutcome } from './scheduler-stats';

/** How the scheduler names a call's end and a provider failure it gives up on (pure mappings). */

/** The outcome a failed call is counted as on the status page. */
export function outcomeOf(code: ErrorCode): CallOutcome {
  if (code === 'cancelled') return 'cancelled';
  return code === 'queue_timeout' || code === 'llm_timeout' || code === 'chat_timeout' ? 'timeout' : 'failed';
}

/** The AppError code for a provider failure that is not (or no longer) retried. */
export function providerFailureCode(error: ProviderError): ErrorCode {
  if (error.unusable) return 'provider_quota_exhausted';
  if (error.kind === 'rate_limited' || error.kind === 'burst') return 'provider_rate_limited';
  if (error.kind === 'timeout') return 'llm_timeout';
  return error.kind === 'bad_request' ? 'internal' : 'llm_unavailable';
}

/** Which limit a 429 named (a burst refusal: the start rate): Ark's `…TPMExceeded` / `TpmRateLimit…`, OpenAI's "tokens" messages. */
export function rateLimitKind(error: ProviderError): RateLimitKind {
  if (error.kind === 'burst') return 'burst';
  const marker = `${error.options.providerCode ?? ''} ${error.message}`;
  return /tpm|tokens? per min|token/i.test(marker) ? 'tokens' : 'requests';
}

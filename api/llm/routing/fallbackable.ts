import { AppError, type ErrorCode } from '../../errors';
import { ProviderError, type ProviderFailureKind } from '../provider';

/**
 * Which failures send a call on to the next endpoint of its route (docs/ENDPOINTS.md, "Fallback").
 * Only failures that say "this endpoint cannot serve the call now" qualify: a 429 (with or without
 * its Retry-After hold), a 5xx or network failure, a timeout before the first byte, an open breaker.
 * A bad request, a caller's abort or the chat's own deadline would fail the same way anywhere.
 *
 * The routing gateway also checks that no token reached anyone yet; this module only names kinds.
 * New provider failure kinds or error codes that mean "try elsewhere" are added to the two sets.
 */

/** Provider failure kinds (ProviderError.kind) worth another endpoint. */
export const FALLBACKABLE_PROVIDER_KINDS: ReadonlySet<ProviderFailureKind> = new Set<ProviderFailureKind>([
  'rate_limited',
  'server',
  'network',
  // No first byte in time; a burst refusal; this endpoint's quota, bill, key or model (another
  // endpoint has its own).
  'timeout',
  'burst',
  'quota_exhausted',
  'not_found',
]);

/**
 * Call error codes (AppError.code, what the call path gives up with) worth another endpoint:
 * rate limited, unavailable (5xx, network, breaker open), timed out in flight.
 */
export const FALLBACKABLE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'provider_rate_limited',
  'llm_unavailable',
  'llm_timeout',
  'provider_quota_exhausted',
]);

/** True when `error` says only that this endpoint cannot serve the call now. */
export function isFallbackable(error: unknown): boolean {
  if (error instanceof ProviderError) {
    if (error.fallbackable) return true;
    const status = error.options.status;
    if (status === 429 || (status !== undefined && status >= 500)) return true;
    return FALLBACKABLE_PROVIDER_KINDS.has(error.kind);
  }
  if (error instanceof AppError) return FALLBACKABLE_CODES.has(error.code);
  return false;
}

import type { Clock } from '../clock';
import { abortReason } from '../errors';

/** Retry timing for the one retry loop (policies/retry-policy.ts). */
export interface BackoffPolicy {
  baseDelayMs: number;
  maxDelayMs: number;
  /** In [0, 1); injected so tests are deterministic. */
  random: () => number;
}

/**
 * Full jitter over an exponential ceiling, added on top of Retry-After: the retry never comes
 * earlier than the provider asked, and callers refused together do not come back together.
 */
export function backoffDelay(
  attempt: number,
  retryAfterMs: number | undefined,
  policy: BackoffPolicy,
): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round((retryAfterMs ?? 0) + policy.random() * ceiling);
}

/** Waits on the Clock; rejects with the signal's reason if it aborts first. */
export function sleep(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal.aborted) return reject(abortReason(signal));
    const onAbort = () => {
      clock.clearTimeout(timer);
      reject(abortReason(signal));
    };
    const timer = clock.setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

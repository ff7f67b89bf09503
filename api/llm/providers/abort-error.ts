/**
 * The rejection of a provider call whose AbortSignal fired: an `AbortError` (so `isAbortError`
 * recognises it) carrying the signal's reason as `cause`, so the scheduler can tell a timeout it
 * caused from a client that went away (see `abortReason` in api/errors.ts).
 */
export function providerAbortError(signal: AbortSignal): Error {
  const error = new Error('The provider call was aborted', { cause: signal.reason });
  error.name = 'AbortError';
  return error;
}

import type { CallerLimits } from '../../config/api-keys';
import type { Clock } from '../clock';
import { AppError } from '../errors';

/**
 * A key's own limits (API_KEYS_FILE `limits`: rpm, tpm, concurrency), checked when a request
 * arrives, before it enters the shared queue: a caller over its share is told at once with 429
 * and Retry-After (when its window frees up), and costs the quota nothing. In memory, per
 * process; the provider's quota itself is kept by the scheduler's limiter (shared through Redis).
 *
 * TPM is reserved (prompt estimate + max output) at the start and settled with the real usage.
 */

const WINDOW_MS = 60_000;
/** Retry-After for a caller at its concurrency limit: calls usually end within a few seconds. */
const CONCURRENCY_RETRY_MS = 1000;

interface KeyState {
  active: number;
  /** Start times within the last minute, oldest first. */
  starts: number[];
  /** Token reservations within the last minute, oldest first (settled in place). */
  tokens: Array<{ at: number; count: number }>;
}

/** A request's hold on its key's limits; release once, settle when the usage is known. */
export interface CallerLease {
  settle(actualTokens: number): void;
  release(): void;
}

const NO_LEASE: CallerLease = { settle: () => {}, release: () => {} };

export class CallerLimiter {
  private readonly keys = new Map<string, KeyState>();

  constructor(private readonly clock: Clock) {}

  /** Takes a start (and the estimated tokens) under the key's limits, or throws user_rate_limited. */
  acquire(key: string | undefined, limits: CallerLimits, estimatedTokens: number): CallerLease {
    if (key === undefined || (!limits.rpm && !limits.tpm && !limits.concurrency)) return NO_LEASE;
    const now = this.clock.now();
    const state = this.keys.get(key) ?? { active: 0, starts: [], tokens: [] };
    this.keys.set(key, state);
    prune(state, now);
    if (limits.concurrency && state.active >= limits.concurrency) {
      throw refused(
        `This key has ${state.active} requests in flight (its concurrency limit)`,
        CONCURRENCY_RETRY_MS,
      );
    }
    if (limits.rpm && state.starts.length >= limits.rpm) {
      throw refused(
        `This key started ${state.starts.length} requests in the last minute (its rpm limit)`,
        state.starts[state.starts.length - limits.rpm] + WINDOW_MS - now,
      );
    }
    if (limits.tpm) {
      let used = state.tokens.reduce((sum, entry) => sum + entry.count, 0);
      if (used > 0 && used + estimatedTokens > limits.tpm) {
        // When enough of the oldest reservations leave the window for this one to fit.
        let freeAt = now;
        for (const entry of state.tokens) {
          used -= entry.count;
          freeAt = entry.at + WINDOW_MS;
          if (used + estimatedTokens <= limits.tpm) break;
        }
        throw refused(`This key would pass its tpm limit (${limits.tpm} tokens a minute)`, freeAt - now);
      }
    }
    state.active++;
    if (limits.rpm) state.starts.push(now);
    const reservation = { at: now, count: estimatedTokens };
    if (limits.tpm) state.tokens.push(reservation);
    let released = false;
    return {
      settle: (actualTokens) => {
        reservation.count = actualTokens;
      },
      release: () => {
        if (released) return;
        released = true;
        state.active--;
      },
    };
  }
}

function prune(state: KeyState, now: number): void {
  while (state.starts.length > 0 && state.starts[0] + WINDOW_MS <= now) state.starts.shift();
  while (state.tokens.length > 0 && state.tokens[0].at + WINDOW_MS <= now) state.tokens.shift();
}

function refused(message: string, retryAfterMs: number): AppError {
  return new AppError('user_rate_limited', message, { retryAfterMs: Math.max(1, retryAfterMs) });
}

import type { ClusterStarts } from './redis-limiter-options';

/**
 * What tryStart-7.lua answers and announces, by name: the script returns a flat array and publishes
 * a space-separated line (Lua has no other cheap shape), and this file is the one place that knows
 * the order of their fields.
 */
export interface StartReply {
  /** How many of the asked starts were granted (the first ones, in order). */
  started: number;
  /** Redis time at which a start not granted may be asked again. */
  retryAt: number;
  /** Redis time of the answer, ms with µs as a fraction. */
  redisNow: number;
  active: number;
  startsLastMinute: number;
  tokensLastMinute: number;
  limits: { concurrency: number; rpm: number; tpm: number };
  /** Redis time until which the provider-wide hold (Retry-After) lasts; 0 = none. */
  heldUntil: number;
  /** The AIMD decreases the cluster has made. */
  decreases: number;
  /** Changes when Redis lost the shared state (a restart, a FLUSHALL). */
  epoch: string;
  /** The starts the rate windows still allowed at the answer (NaN when the script did not say). */
  startsAvailable: number;
}

export function readStartReply(reply: Array<number | string>): StartReply {
  const [started, retryAt, redisNow, active, startsLastMinute, tokens, concurrency, rpm, tpm, heldUntil] =
    reply.map(Number);
  return {
    started,
    retryAt,
    redisNow,
    active,
    startsLastMinute,
    tokensLastMinute: tokens,
    limits: { concurrency, rpm, tpm },
    heldUntil,
    decreases: Number(reply[10]),
    epoch: String(reply[11] ?? ''),
    startsAvailable: Number(reply[12] ?? Number.NaN),
  };
}

/** One load-channel announcement, by name. */
export interface Announcement {
  /** Redis time of the change, ms with µs as a fraction. */
  redisAt: number;
  /** Calls in flight in the cluster after it. */
  active: number;
  /** A start's: the starts in the rate window after it. */
  startsLastMinute?: number;
  /** A start's: how many started, and whether calls still wait (undefined for a release). */
  starts?: ClusterStarts;
}

/**
 * A start's announcement is "<stamp> <active> <startsLastMinute> <started> <waiting 1|0>"; a
 * release's or a hand-over's has only the first two fields. Undefined when malformed.
 */
export function readAnnouncement(message: string): Announcement | undefined {
  const [redisAt, active, startsLastMinute, count, waiting] = message.split(' ').map(Number);
  if (!Number.isFinite(redisAt) || !Number.isFinite(active)) return undefined;
  return {
    redisAt,
    active,
    ...(Number.isFinite(startsLastMinute) ? { startsLastMinute } : {}),
    ...(count > 0 ? { starts: { redisAt, count, waiting: waiting === 1 } } : {}),
  };
}

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

/**
 * The starts a load-channel announcement tells of: a start's announcement is
 * "<stamp> <active> <startsLastMinute> <started> <waiting 1|0>"; a release's has only the first two
 * fields (undefined then).
 */
export function announcedStarts(message: string): ClusterStarts | undefined {
  const [redisAt, , , count, waiting] = message.split(' ').map(Number);
  if (!Number.isFinite(redisAt) || !(count > 0)) return undefined;
  return { redisAt, count, waiting: waiting === 1 };
}

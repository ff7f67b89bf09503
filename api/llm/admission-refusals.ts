import { AppError } from '../errors';

/**
 * The errors admission refuses a chat with (api/llm/admission.ts decides when): each `overloaded`,
 * with a Retry-After from what was measured — how far past its deadline the chat would finish, or
 * one start's spacing of the line — never below `minRetryAfterMs`, so refused clients do not come
 * straight back. `drainRatePerMs` is the line's measured drain rate (undefined cold).
 */
export interface RefusalTiming {
  drainRatePerMs: number | undefined;
  minRetryAfterMs: number;
}

/** An operator paused the LLM queue and refuses new chats meanwhile. */
export function pausedRefusal(retryAfterMs: number, timing: RefusalTiming): AppError {
  return new AppError('overloaded', 'An operator paused the LLM queue and is refusing new chats', {
    retryAfterMs: retryAfter(retryAfterMs, timing),
    details: { paused: true },
  });
}

/**
 * The chat at `position` would finish `lateMs` past its deadline (`why` says when it was judged):
 * the places ahead that must leave first take about that long to.
 */
export function timeRefusal(position: number, lateMs: number, why: string, timing: RefusalTiming): AppError {
  const estimatedWaitMs = estimatedWait(position - 1, timing);
  const wait =
    estimatedWaitMs === undefined ? '' : ` (estimated wait ${Math.ceil(estimatedWaitMs / 1000)} s)`;
  return new AppError(
    'overloaded',
    `The chat ${why}: the provider quota cannot serve it within CHAT_TIMEOUT_MS${wait}`,
    { retryAfterMs: retryAfter(lateMs, timing), details: { estimatedWaitMs, position } },
  );
}

/** A chat arriving at a full line (`waiting` chats wait, `running` run, `maxRunning` at most). */
export function lineFullRefusal(
  waiting: number,
  running: number,
  maxRunning: number,
  timing: RefusalTiming,
): AppError {
  const estimatedWaitMs = estimatedWait(waiting + 1, timing);
  const estimate =
    estimatedWaitMs === undefined ? '' : `; the estimated wait is ${Math.ceil(estimatedWaitMs / 1000)} s`;
  const rate = timing.drainRatePerMs;
  return new AppError(
    'overloaded',
    `The waiting line is full (${waiting} waiting, ${running} running)${estimate}, retry later`,
    {
      retryAfterMs: retryAfter(rate === undefined ? 0 : 1 / rate, timing),
      details: { estimatedWaitMs, waiting, max: maxRunning },
    },
  );
}

/** The time `places` chats take to leave the line at its measured rate, ms; undefined cold. */
export function waitForPlacesMs(places: number, drainRatePerMs: number | undefined): number | undefined {
  return drainRatePerMs === undefined ? undefined : Math.round(places / drainRatePerMs);
}

function estimatedWait(places: number, timing: RefusalTiming): number | undefined {
  return waitForPlacesMs(places, timing.drainRatePerMs);
}

function retryAfter(ms: number, timing: RefusalTiming): number {
  return Math.max(timing.minRetryAfterMs, Math.ceil(ms));
}

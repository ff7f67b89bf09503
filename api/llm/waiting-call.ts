import type { Clock } from '../clock';
import { AppError, abortReason } from '../errors';
import type { Lane, QueueEntry } from './queue-lanes';
import type { AcquireRequest, Slot } from './request-queue-types';

/**
 * A call joining the request queue: its place in the line (its age key: when it first queued,
 * plus its class's aging handicap) and the two ways it can leave before it starts — its deadline
 * (or its own longest wait) passes, or its caller aborts. Either one calls `leave` with the error.
 */
export function newWaitingCall(input: {
  id: number;
  request: AcquireRequest;
  lane: Lane;
  agingStepMs: number;
  /** The chat's deadline when the chat runs late (its calls then go first). */
  lateDeadline?: number;
  signal: AbortSignal;
  resolve: (slot: Slot) => void;
  reject: (error: AppError) => void;
  clock: Clock;
  leave: (entry: QueueEntry, error: AppError) => void;
}): QueueEntry {
  const { request, lane, signal, clock } = input;
  const now = clock.now();
  const entry: QueueEntry = {
    id: input.id,
    epoch: 0,
    seq: input.id,
    request,
    enqueuedAt: now,
    ageKey: (request.firstEnqueuedAt ?? now) + lane.rank * input.agingStepMs,
    lateDeadline: input.lateDeadline,
    lane,
    state: 'queued',
    resolve: input.resolve,
    reject: input.reject,
    signal,
    onAbort: () => input.leave(entry, abortReason(signal)),
    waitedMs: 0,
  };
  signal.addEventListener('abort', entry.onAbort, { once: true });
  entry.deadlineTimer = clock.setTimeout(
    () => input.leave(entry, new AppError('queue_timeout')),
    Math.min(request.deadline - now, request.maxWaitMs ?? Infinity),
  );
  return entry;
}

/** The call no longer waits (started or dropped): its abort listener and deadline timer go. */
export function stopWaiting(entry: QueueEntry, clock: Clock): void {
  entry.signal.removeEventListener('abort', entry.onAbort);
  if (entry.deadlineTimer) clock.clearTimeout(entry.deadlineTimer);
  entry.state = 'done';
}

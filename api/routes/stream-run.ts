import type { Request, Response } from 'express';
import type { HeartbeatTicker } from '../streaming/heartbeat-ticker';
import { SseWriter, type SseBackpressure, type SseTokenBatching } from '../streaming/sse-writer';
import type { Run } from '../streaming/run';
import { isTerminal } from '../streaming/run-events';
import type { RunAttendance } from '../streaming/sse-limiter';
import type { WaitingReads } from '../streaming/waiting-reads';
import { requestLog } from './request-context';

export interface StreamRunOptions {
  heartbeat: HeartbeatTicker;
  /** How far a slow reader may fall behind before its stream is ended (unbounded when absent). */
  backpressure?: SseBackpressure;
  /** Tokens written together within a short window (every token at once when absent). */
  tokenBatching?: SseTokenBatching;
  /** Who keeps count of the run's listeners: the last one leaving starts its grace period. */
  attendance: RunAttendance;
  /** Replay only events after this id (Last-Event-ID). */
  afterId?: number;
  /** The client is coming back to a run it had left (token or Last-Event-ID). */
  resume?: boolean;
  /** While the run waits in the line, its socket is read in turns with the other waiting ones. */
  waitingReads?: WaitingReads;
}

/**
 * Streams a run's events (after `afterId`) to an SSE response until its terminal event. A client
 * that leaves before the end stops listening; the attendance decides what happens to the run
 * (it outlives its last listener by a grace period, then is cancelled).
 */
export function streamRunToResponse(req: Request, res: Response, run: Run, options: StreamRunOptions): void {
  options.attendance.attach(run, { resume: options.resume });
  // A client can hang up while the chat was being opened; its `close` has then already fired.
  if (req.socket.destroyed || res.destroyed) {
    options.attendance.detach(run);
    // A client that never received a byte has neither the run id nor a token: nobody can resume it.
    if (!options.resume) run.cancel();
    return;
  }
  const writer = new SseWriter(res, options.heartbeat, options.backpressure, options.tokenBatching);
  const socket = req.socket;
  const reads = options.waitingReads && options.attendance.isWaiting(run) ? options.waitingReads : undefined;
  reads?.add(socket, run, writer);
  let inLine = reads !== undefined;
  // Past the replay, a new place for a paused socket waits for its read turn (WaitingReads.hold);
  // the place a stream joins with is written at once.
  let live = false;
  const leaveLine = () => {
    if (!inLine) return;
    inLine = false;
    reads!.delete(socket);
  };
  let ended = false;
  const unsubscribe = run.subscribe((record) => {
    // Anything but the line's own news means the run started (or ended): read this socket again.
    if (inLine && record.event !== 'queued' && record.event !== 'run') leaveLine();
    if (inLine && live && record.event === 'queued' && reads!.hold(socket, record)) return;
    writer.send(record);
    if (isTerminal(record.event)) {
      ended = true;
      writer.end();
    }
  }, options.afterId ?? 0);
  live = true;
  // Handed over to another instance (durable chats): the stream ends without a terminal event, so
  // the client reconnects with Last-Event-ID and follows the run wherever it goes on.
  const offHandOver = run.onHandOver(() => {
    if (ended) return;
    ended = true;
    leaveLine();
    writer.end();
  });
  // A finished run whose terminal event was already behind `afterId` has nothing more to send:
  // end now rather than hold an idle stream open (callers answer 204 before getting here).
  if (run.isFinished && !ended) {
    ended = true;
    writer.end();
  }
  res.on('close', () => {
    leaveLine();
    unsubscribe();
    offHandOver();
    if (!ended) {
      requestLog(req, 'info')?.info({ runId: run.id }, 'client left before the run ended');
      options.attendance.detach(run);
    }
  });
}

/** The id a reconnecting EventSource sends (`Last-Event-ID`, or `?lastEventId=` for clients that cannot set headers). */
export function lastEventId(req: Request): number {
  const raw =
    req.get('last-event-id') ??
    (typeof req.query.lastEventId === 'string' ? req.query.lastEventId : undefined);
  return raw !== undefined && /^\d{1,15}$/.test(raw.trim()) ? Number(raw.trim()) : 0;
}

import type { Request, Response } from 'express';
import { AppError } from '../errors';
import type { HeartbeatTicker } from '../streaming/heartbeat-ticker';
import type { RunEventLog, SharedRun } from '../streaming/run-event-log';
import type { RunEvent } from '../streaming/run-events';
import { SseWriter, type SseTokenBatching } from '../streaming/sse-writer';

/**
 * Streams a run that another instance owns, from the shared run event log: replay after
 * `afterId`, then live until its terminal event — the same `id:`/`event:`/`data:` blocks as a
 * local run. While the client stays, the owner is told someone follows (so its grace does not
 * cancel the run). If the owner dies before the end, the stream still ends with an `error`
 * (never silently), which only this client sees: the run's own log is the owner's to write.
 */
export function streamSharedRun(
  req: Request,
  res: Response,
  run: SharedRun,
  options: {
    heartbeat: HeartbeatTicker;
    eventLog: RunEventLog;
    afterId: number;
    tokenBatching?: SseTokenBatching;
  },
): void {
  if (req.socket.destroyed || res.destroyed) return;
  const controller = new AbortController();
  res.on('close', () => controller.abort());
  const writer = new SseWriter(res, options.heartbeat, undefined, options.tokenBatching);
  options.eventLog.attend(run, controller.signal);
  let lastId = options.afterId;
  const send = (record: RunEvent) => {
    lastId = record.id;
    writer.send(record);
  };
  void options.eventLog
    .follow(run, options.afterId, send, controller.signal)
    .then((end) => {
      if (end === 'owner_lost' || end === 'unavailable') {
        const error =
          end === 'owner_lost'
            ? new AppError(
                'shutting_down',
                'The instance running this chat stopped before it finished; send the message again',
              )
            : new AppError('internal', 'The shared run log is unreachable; resume again later');
        req.log?.warn({ runId: run.runId, end }, 'shared run ended without its terminal event');
        writer.send({ id: lastId + 1, event: 'error', data: error.toBody().error });
      }
    })
    .catch((error: unknown) =>
      req.log?.error({ err: error, runId: run.runId }, 'following a shared run failed'),
    )
    .finally(() => {
      writer.end();
      controller.abort();
    });
}

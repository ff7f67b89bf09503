import { Router } from 'express';
import { AppError } from '../errors';
import type { RunEventLog, SharedRun } from '../streaming/run-event-log';
import type { RunRegistry } from '../streaming/run-registry';
import type { SseStreaming } from '../streaming/sse-streaming';
import type { Config } from '../../config';
import { resolveUser } from './auth';
import { lastEventId, streamRunToResponse } from './stream-run';
import { streamSharedRun } from './stream-shared-run';

/**
 * GET /api/runs/:runId/events — a run's events for EventSource clients: replay after
 * Last-Event-ID, then live until `done`/`error`. Following a run here keeps it alive: a run is
 * cancelled only when its last listener, on any route, has been gone for the resume grace period.
 * A run another instance owns is served from the shared run event log (REDIS_URL), alike.
 */
export function runsRouter(deps: {
  runs: RunRegistry;
  sse: SseStreaming;
  config: Config;
  eventLog?: RunEventLog;
}): Router {
  const router = Router();
  router.get('/runs/:runId/events', async (req, res) => {
    const runId = req.params.runId;
    const run = deps.runs.get(runId);
    const afterId = lastEventId(req);
    const reconnecting = req.get('last-event-id') !== undefined || req.query.lastEventId !== undefined;
    // With API_KEYS the run must be the caller's; without, its unguessable id is the capability
    // (EventSource clients cannot send X-User-Id).
    const owner =
      deps.config.apiKeys.size > 0
        ? resolveUser(req, deps.config, undefined, { allowQueryKey: true })
        : undefined;
    // Not ours: perhaps another instance's (REDIS_URL), known to the shared run event log.
    const shared = run ? undefined : await findShared(deps.eventLog, runId, req.log);
    // An EventSource reconnects after every end (it always does after `done`): to a run that has
    // nothing more to send — finished and replayed, or expired — it gets 204, which makes it stop.
    // Without Last-Event-ID an unknown run is what it looks like: not found.
    if (!run && !shared && reconnecting) {
      res.status(204).end();
      return;
    }
    const userId = run?.userId ?? shared?.userId;
    if (userId === undefined || (owner !== undefined && userId !== owner)) {
      throw new AppError('not_found', `Run ${runId} was not found (or has expired)`);
    }
    if (run) {
      if (run.isFinished && afterId >= run.lastEventId) {
        res.status(204).end();
        return;
      }
      streamRunToResponse(req, res, run, {
        heartbeat: deps.sse.heartbeat,
        backpressure: deps.sse.backpressure,
        tokenBatching: deps.sse.tokenBatching,
        attendance: deps.sse.limiter,
        afterId,
        resume: true,
        waitingReads: deps.sse.waitingReads,
      });
      return;
    }
    if (shared!.terminalId !== undefined && afterId >= shared!.terminalId) {
      res.status(204).end();
      return;
    }
    streamSharedRun(req, res, shared!, {
      heartbeat: deps.sse.heartbeat,
      eventLog: deps.eventLog!,
      afterId,
      tokenBatching: deps.sse.tokenBatching,
    });
  });
  return router;
}

async function findShared(
  eventLog: RunEventLog | undefined,
  runId: string,
  log: { warn(details: object, message: string): void } | undefined,
): Promise<SharedRun | undefined> {
  if (!eventLog) return undefined;
  try {
    return await eventLog.find(runId);
  } catch (error) {
    // Redis down: only this instance's runs can be found, as without REDIS_URL.
    log?.warn(
      { runId, error: error instanceof Error ? error.message : String(error) },
      'run event log lookup failed',
    );
    return undefined;
  }
}

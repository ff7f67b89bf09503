import type { Config } from '../../config';
import type { Clock } from '../clock';
import type { Logger } from '../logger';
import type { ChatAdmission } from '../llm/admission';
import type { RunHolds } from '../llm/llm-gateway';
import { HeartbeatTicker } from './heartbeat-ticker';
import { SseLimiter, type SseLimiterStats } from './sse-limiter';
import type { SseBackpressure, SseTokenBatching } from './sse-writer';
import { WaitingReads } from './waiting-reads';

/** The SSE layer's shared parts, built once by the composition root and handed to the routes. */
export interface SseStreaming {
  limiter: SseLimiter;
  heartbeat: HeartbeatTicker;
  /** Per-listener write bounds for every SseWriter. */
  backpressure: SseBackpressure;
  /** How every SseWriter writes tokens together (SSE_TOKEN_BATCH_MS). */
  tokenBatching: SseTokenBatching;
  /** Reads the sockets of streams waiting in the line in turns, once there are many. */
  waitingReads: WaitingReads;
  /** GET /api/sse/status. */
  status(): SseLimiterStats & { openStreams: number };
  /** Stops admitting and ticking (shutdown); runs are cancelled by their owner. */
  close(): void;
}

export function createSseStreaming(
  config: Config,
  deps: { clock: Clock; logger?: Logger; runHolds?: RunHolds; admission: ChatAdmission },
): SseStreaming {
  const heartbeat = new HeartbeatTicker({ clock: deps.clock, intervalMs: config.sse.heartbeatMs });
  const waitingReads = new WaitingReads({ clock: deps.clock, heartbeat });
  const limiter = new SseLimiter({
    clock: deps.clock,
    admission: deps.admission,
    maxConcurrent: config.sse.maxConcurrent,
    queueMax: config.sse.queueMax,
    tokenGraceMs: config.sse.tokenGraceMs,
    resumeGraceMs: config.sse.resumeGraceMs,
    runHolds: deps.runHolds,
    readFirst: (run) => waitingReads.readNow(run),
    logger: deps.logger,
  });
  const backpressure: SseBackpressure = {
    clock: deps.clock,
    slowReaderMs: config.sse.slowReaderMs,
    maxBufferedBytes: config.sse.maxBufferedBytes,
    logger: deps.logger,
  };
  const tokenBatching: SseTokenBatching = { clock: deps.clock, windowMs: config.sse.tokenBatchMs };
  return {
    limiter,
    heartbeat,
    backpressure,
    tokenBatching,
    waitingReads,
    status: () => ({ ...limiter.stats(), openStreams: heartbeat.size }),
    close() {
      limiter.close();
      heartbeat.close();
      waitingReads.close();
    },
  };
}

/** GET /api/sse/status, less `openStreams` (the heartbeat ticker knows those). */
export interface SseLimiterStats {
  active: number;
  max: number;
  waiting: number;
  /** Runs that got a slot. */
  totalServed: number;
  /** Mean of the waits that really happened, for runs that went through the line, ms. */
  averageWaitMs: number;
  /** What a chat arriving now would be told, ms (0 when it would start at once; null before the line was measured). */
  currentEstimatedWaitMs: number | null;
  /** The measured mean run time of recent completed chats, ms (null before one completed). */
  meanRunMs: number | null;
  /** Clients that came back (token or Last-Event-ID) to a run they had left. */
  resumes: number;
  /** Runs cancelled while waiting or streaming (client gone past the grace, shutdown, JSON client left…). */
  cancellations: number;
  /** Chats refused with 503 on arrival: the line full, or measured unable to start in time. */
  refused: number;
  /** Chats that joined the line and were refused later (an `overloaded` event): measured unable to start in time. */
  refusedWaiting: number;
}

/** What the line is at this moment, as the limiter reads it for its stats. */
export interface LineNow {
  active: number;
  max: number;
  waiting: number;
  currentEstimatedWaitMs: number | null;
  /** Admission's mean run time, ms; undefined before a chat completed. */
  meanRunMs: number | undefined;
}

/**
 * The chat line's cumulative counters (SseLimiter counts, this keeps them) and the stats it reports
 * from them with the line's current figures. Counting only: it decides nothing.
 */
export class LineStats {
  private totalServed = 0;
  private waited = 0;
  private totalWaitMs = 0;
  private resumes = 0;
  private cancellations = 0;
  private refused = 0;
  private refusedWaiting = 0;

  /** A run got a slot; `waitedMs` when it went through the line (undefined: started at once). */
  served(waitedMs: number | undefined): void {
    this.totalServed++;
    if (waitedMs === undefined) return;
    this.waited++;
    this.totalWaitMs += waitedMs;
  }

  /** A client came back to a run it had left. */
  resumed(): void {
    this.resumes++;
  }

  /** A run was cancelled while waiting or running. */
  cancelled(): void {
    this.cancellations++;
  }

  /** A chat was refused before its stream (503). */
  refusedOnArrival(): void {
    this.refused++;
  }

  /** A waiting chat was refused with an `overloaded` event. */
  refusedWhileWaiting(): void {
    this.refusedWaiting++;
  }

  stats(line: LineNow): SseLimiterStats {
    const { meanRunMs } = line;
    return {
      active: line.active,
      max: line.max,
      waiting: line.waiting,
      totalServed: this.totalServed,
      averageWaitMs: this.waited === 0 ? 0 : Math.round(this.totalWaitMs / this.waited),
      currentEstimatedWaitMs: line.currentEstimatedWaitMs,
      meanRunMs: meanRunMs === undefined ? null : Math.round(meanRunMs),
      resumes: this.resumes,
      cancellations: this.cancellations,
      refused: this.refused,
      refusedWaiting: this.refusedWaiting,
    };
  }
}

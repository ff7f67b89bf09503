/**
 * The closing lines of `scripts/load-test.ts`: what Artillery's own summary does not say. Its
 * `http.response_time` is the time to the response headers, which a stream sends at once, so the
 * chat's real time is the processor's `troupe.chat.completed_ms`; and its 200s mix completed
 * chats with streams that ended in an `error` event.
 */

interface ArtillerySummary {
  count?: number;
  median?: number;
  p50?: number;
  p95?: number;
  p99?: number;
  max?: number;
}

/** The part of Artillery's `--output` JSON report read here. */
export interface ArtilleryReport {
  aggregate?: {
    counters?: Record<string, number>;
    summaries?: Record<string, ArtillerySummary>;
  };
}

export interface ChatOutcomes {
  completed: number;
  refused: number;
  refusedWithRetryAfter: number;
  /** Streams that ended in an error event, ended with neither event, network errors, other statuses. */
  failed: number;
  failures: Record<string, number>;
}

export function chatOutcomes(report: ArtilleryReport): ChatOutcomes {
  const counters = report.aggregate?.counters ?? {};
  const failures: Record<string, number> = {};
  for (const [name, value] of Object.entries(counters)) {
    const streamError = /^troupe\.chat\.error\.(.+)$/.exec(name)?.[1];
    if (streamError) failures[streamError] = value;
    else if (name === 'troupe.chat.incomplete') failures.incomplete = value;
    else if (name.startsWith('errors.')) failures[name.slice('errors.'.length)] = value;
    else {
      const status = /^http\.codes\.(\d+)$/.exec(name)?.[1];
      if (status && status !== '200' && status !== '503') failures[`http_${status}`] = value;
    }
  }
  return {
    completed: counters['troupe.chat.completed'] ?? 0,
    refused: counters['troupe.chat.refused'] ?? 0,
    refusedWithRetryAfter: counters['troupe.chat.refused_with_retry_after'] ?? 0,
    failed: Object.values(failures).reduce((sum, value) => sum + value, 0),
    failures,
  };
}

export function summaryLines(report: ArtilleryReport, provider429s: number | undefined): string[] {
  const outcomes = chatOutcomes(report);
  const detail = Object.entries(outcomes.failures)
    .map(([name, value]) => `${name} ${value}`)
    .join(', ');
  const lines = [
    `chats: ${outcomes.completed} completed, ${outcomes.refused} refused at once (${outcomes.refusedWithRetryAfter} with Retry-After), ${outcomes.failed} failed${detail ? ` (${detail})` : ''}`,
  ];
  const chat = report.aggregate?.summaries?.['troupe.chat.completed_ms'];
  const headers = report.aggregate?.summaries?.['http.response_time'];
  lines.push(
    chat?.count
      ? `completed-chat time (request → done): median ${seconds(chat.median ?? chat.p50)}, p95 ${seconds(chat.p95)}, p99 ${seconds(chat.p99)}, max ${seconds(chat.max)}`
      : 'completed-chat time: no chat completed',
  );
  if (headers) {
    lines.push(
      `(Artillery's http.response_time is the time to the response headers — a stream's first byte, or the 503: median ${headers.median ?? headers.p50} ms, p95 ${headers.p95} ms)`,
    );
  }
  lines.push(`provider 429s: ${provider429s ?? 'unknown (no sim-llm counters)'}`);
  return lines;
}

function seconds(ms: number | undefined): string {
  return ms === undefined ? '–' : `${(ms / 1000).toFixed(1)} s`;
}

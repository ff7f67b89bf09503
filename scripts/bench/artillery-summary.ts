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
  /** Streams that waited in line and then ended with an `overloaded` event (no quota spent). */
  refusedWhileWaiting: number;
  /** Streams that ended in an error event, ended with neither event, network errors, other statuses. */
  failed: number;
  failures: Record<string, number>;
}

export function chatOutcomes(report: ArtilleryReport): ChatOutcomes {
  const counters = report.aggregate?.counters ?? {};
  const failures: Record<string, number> = {};
  for (const [name, value] of Object.entries(counters)) {
    const streamError = /^troupe\.chat\.error\.(.+)$/.exec(name)?.[1];
    // `overloaded` in the stream: refused while waiting in line, before any provider call.
    if (streamError === 'overloaded') continue;
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
    refusedWhileWaiting: counters['troupe.chat.error.overloaded'] ?? 0,
    failed: Object.values(failures).reduce((sum, value) => sum + value, 0),
    failures,
  };
}

/** The provider's own counters (sim-llm's GET /sim/stats), as far as the summary reads them. */
export interface ProviderCounters {
  requests: number;
  accepted: number;
  rejected429: number;
}

/** The provider's counters over one phase of the run (from the once-a-second samples). */
export interface PhaseProviderFigures {
  name: string;
  durationS: number;
  arrivalRate: number;
  /** Seconds the figures cover: the phase, and for the last one the drain after it too. */
  windowS: number;
  calls: number;
  rejected429: number;
}

/** The phase as load-test.yml (or --quick) sets it. */
export interface LoadPhase {
  name?: string;
  duration: number;
  arrivalRate: number;
}

/**
 * The provider's calls and 429s in each phase, from readings of its counters taken during the run
 * (`at` in ms since the run started): the difference between the last reading at or before the
 * phase's end and the last one at or before its start. A phase starts when Artillery said it did
 * (`startsAt`, ms since the run started) or, unknown, when the phases before it add up to; the last
 * phase runs to the final reading, so the chats still streaming after the arrivals stop count there.
 */
export function providerByPhase(
  phases: LoadPhase[],
  readings: Array<{ at: number; stats: ProviderCounters }>,
  startsAt: Array<number | undefined> = [],
): PhaseProviderFigures[] {
  const at = (ms: number): ProviderCounters =>
    readings.filter((reading) => reading.at <= ms).at(-1)?.stats ?? {
      requests: 0,
      accepted: 0,
      rejected429: 0,
    };
  const finalAt = readings.at(-1)?.at ?? 0;
  const figures: PhaseProviderFigures[] = [];
  let plannedStart = 0;
  phases.forEach((phase, index) => {
    const startMs = startsAt[index] ?? plannedStart;
    const last = index === phases.length - 1;
    const endMs = last ? Infinity : (startsAt[index + 1] ?? startMs + phase.duration * 1000);
    const before = at(startMs);
    const after = at(endMs);
    figures.push({
      name: phase.name ?? `phase ${index + 1}: ${phase.arrivalRate} new users/s`,
      durationS: phase.duration,
      arrivalRate: phase.arrivalRate,
      windowS: last ? Math.max(phase.duration, (finalAt - startMs) / 1000) : (endMs - startMs) / 1000,
      calls: after.requests - before.requests,
      rejected429: after.rejected429 - before.rejected429,
    });
    plannedStart = endMs;
  });
  return figures;
}

export function summaryLines(
  report: ArtilleryReport,
  provider: ProviderCounters | undefined,
  phases: PhaseProviderFigures[] = [],
): string[] {
  const outcomes = chatOutcomes(report);
  const detail = Object.entries(outcomes.failures)
    .map(([name, value]) => `${name} ${value}`)
    .join(', ');
  const lines = [
    `chats: ${outcomes.completed} completed, ${outcomes.refused} refused at once (${outcomes.refusedWithRetryAfter} with Retry-After)${outcomes.refusedWhileWaiting ? `, ${outcomes.refusedWhileWaiting} refused while waiting in line (overloaded event)` : ''}, ${outcomes.failed} failed${detail ? ` (${detail})` : ''}`,
  ];
  for (const [scenario, counts] of Object.entries(scenarioOutcomes(report))) {
    lines.push(
      `  ${scenario} scenario: ${counts.completed ?? 0} completed, ${counts.refused ?? 0} refused, ${counts.failed ?? 0} failed`,
    );
  }
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
  lines.push(
    provider
      ? `provider (its own counters): ${provider.requests} calls, ${provider.accepted} accepted, ${provider.rejected429} answered 429`
      : 'provider: unknown (no sim-llm counters)',
  );
  for (const phase of phases) {
    lines.push(
      `  ${phase.name}, ${phase.durationS} s${drainText(phase)}: ${phase.calls} calls (${Math.round((phase.calls / phase.windowS) * 60)}/min), ${phase.rejected429} answered 429`,
    );
  }
  return lines;
}

/** The last phase's figures run on while the admitted chats finish: say for how long. */
function drainText(phase: PhaseProviderFigures): string {
  const drainS = Math.round(phase.windowS - phase.durationS);
  return drainS >= 1 ? ` + ${drainS} s draining` : '';
}

/** `troupe.scenario.<tag>.<outcome>` counters, by scenario. */
function scenarioOutcomes(report: ArtilleryReport): Record<string, Record<string, number>> {
  const byScenario: Record<string, Record<string, number>> = {};
  for (const [name, value] of Object.entries(report.aggregate?.counters ?? {})) {
    const match = /^troupe\.scenario\.([^.]+)\.(completed|refused|failed)$/.exec(name);
    if (match) (byScenario[match[1]] ??= {})[match[2]] = value;
  }
  return byScenario;
}

function seconds(ms: number | undefined): string {
  return ms === undefined ? '–' : `${(ms / 1000).toFixed(1)} s`;
}

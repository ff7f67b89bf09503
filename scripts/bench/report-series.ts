import type { BenchReport, ReportInput, TimelinePoint } from './bench-report';
import type { ServerDiagnostics, Sample } from './resource-sampler';
import { summarize } from './statistics';

/**
 * The report's figures that come from time series rather than from the chats alone: the
 * server's event loop, provider rates from the sim's counters, held streams and their memory,
 * and the timeline the chart draws. Pure, like bench-report.ts.
 */

const mb = (kb: number | undefined) => (kb === undefined ? undefined : kb / 1024);

export function eventLoopFigures(
  lines: ServerDiagnostics[],
  startAt: number,
): NonNullable<BenchReport['server']['eventLoop']> {
  const measured = lines.filter((line) => line.at >= startAt);
  const pauses = measured.flatMap((line) => line.gc);
  return {
    maxDelayMs: Math.max(0, ...measured.map((line) => line.loopMaxMs)),
    worstP99Ms: Math.max(0, ...measured.map((line) => line.loopP99Ms)),
    gcPausesOver50Ms: pauses.filter((pause) => pause.ms >= 50).length,
    longestGcMs: Math.max(0, ...pauses.map((pause) => pause.ms)),
    stalls: measured
      .filter((line) => line.loopMaxMs >= 100)
      .slice(0, 20)
      .map((line) => ({
        t: Math.round((line.at - startAt) / 100) / 10,
        delayMs: Math.round(line.loopMaxMs),
        gcMs: Math.round(line.gc.reduce((sum, pause) => sum + pause.ms, 0)),
      })),
  };
}

/** Provider calls accepted per second between two times, from the sim counters in the samples. */
export function providerRate(samples: Sample[], from: number, to: number): number | undefined {
  const withStats = samples.filter((sample) => sample.sim?.stats);
  const first = withStats.find((sample) => sample.at >= from);
  const last = [...withStats].reverse().find((sample) => sample.at <= to);
  if (!first || !last || last.at <= first.at) return undefined;
  return (last.sim!.stats!.accepted - first.sim!.stats!.accepted) / ((last.at - first.at) / 1000);
}

/**
 * The provider's completions per second over the sampled intervals in which calls waited for a
 * slot at both ends (the sampled instance's LLM queue or its SSE line not empty): the stretch of a
 * burst where only the quota held work back, so that its rate is what to set against the bound
 * (a burst's ramp and its tail of last calls are left out). Undefined with no such interval.
 */
export function whileWaitingRate(samples: Sample[]): { seconds: number; callsPerS: number } | undefined {
  const waiting = (sample: Sample) => (sample.queue?.queueLength ?? 0) > 0 || (sample.sse?.waiting ?? 0) > 0;
  let seconds = 0;
  let calls = 0;
  for (let index = 1; index < samples.length; index++) {
    const [before, after] = [samples[index - 1], samples[index]];
    if (!before.sim?.stats || !after.sim?.stats || !waiting(before) || !waiting(after)) continue;
    seconds += (after.at - before.at) / 1000;
    calls += after.sim.stats.completed - before.sim.stats.completed;
  }
  return seconds > 0 ? { seconds, callsPerS: calls / seconds } : undefined;
}

export function streamFigures(input: ReportInput): NonNullable<BenchReport['streams']> {
  let peak: Sample | undefined;
  for (const sample of input.samples) if (!peak || sample.counters.open > peak.counters.open) peak = sample;
  const peakOpen = peak?.counters.open ?? 0;
  const queuedEvents = input.records.reduce((sum, record) => sum + (record.queuedEvents ?? 0), 0);
  const baselineKb = input.baseline?.troupe?.rssKb;
  const rssAtPeakKb = peak?.troupe?.rssKb;
  return {
    peakOpen,
    peakWaiting: input.samples.reduce(
      (highest, sample) => Math.max(highest, sample.counters.waiting, sample.sse?.waiting ?? 0),
      0,
    ),
    rssAtPeakMb: mb(rssAtPeakKb),
    ...(rssAtPeakKb !== undefined && baselineKb !== undefined && peakOpen > 0
      ? { rssPerStreamKb: (rssAtPeakKb - baselineKb) / peakOpen }
      : {}),
    queuedReceived: input.records.filter((record) => record.queuedAt !== undefined).length,
    queuedEvents,
    queuedEventsPerS: queuedEvents / Math.max(1, (input.endedAt - input.startAt) / 1000),
    ...heapFigures(input, peak?.at, peakOpen),
  };
}

/** Heap in use at the diagnostics line nearest the peak, against the last line before the first arrival. */
export function heapFigures(
  input: ReportInput,
  peakAt: number | undefined,
  peakOpen: number,
): { heapAtPeakMb?: number; heapPerStreamKb?: number } {
  const lines = (input.diagnostics ?? []).filter((line) => line.heapUsedMb !== undefined);
  if (peakAt === undefined || lines.length === 0) return {};
  const resting = [...lines].reverse().find((line) => line.at <= input.startAt);
  const nearest = lines.reduce((best, line) =>
    Math.abs(line.at - peakAt) < Math.abs(best.at - peakAt) ? line : best,
  );
  return {
    heapAtPeakMb: nearest.heapUsedMb,
    ...(resting && peakOpen > 0
      ? { heapPerStreamKb: ((nearest.heapUsedMb! - resting.heapUsedMb!) * 1024) / peakOpen }
      : {}),
  };
}

/** ~60 points over the whole run (arrivals and drain). */
export function buildTimeline(input: ReportInput): TimelinePoint[] {
  const spanMs = Math.max(1000, input.endedAt - input.startAt);
  const bucketMs = Math.max(1000, Math.ceil(spanMs / 60 / 1000) * 1000);
  const buckets = Math.ceil(spanMs / bucketMs);
  const points: TimelinePoint[] = [];
  for (let index = 0; index < buckets; index++) {
    const from = input.startAt + index * bucketMs;
    const to = from + bucketMs;
    const inside = (time: number) => time >= from && time < to;
    let goodCalls = 0;
    let completedChats = 0;
    let refusedChats = 0;
    for (const record of input.records) {
      if (record.outcome === 'completed') {
        goodCalls += record.callTimes.filter(inside).length;
        if (inside(record.endedAt)) completedChats++;
      } else if (record.outcome === 'refused' && inside(record.endedAt)) {
        refusedChats++;
      }
    }
    const samples = input.samples.filter((sample) => inside(sample.at));
    const last = samples[samples.length - 1];
    const provider = providerRate(input.samples, from, to + 1000);
    points.push({
      t: (from - input.startAt) / 1000,
      goodput: goodCalls / (bucketMs / 1000),
      ...(provider !== undefined ? { providerCalls: provider } : {}),
      completedChats,
      refusedChats,
      ...(last?.troupe ? { rssMb: last.troupe.rssKb / 1024 } : {}),
      ...(samples.some((sample) => sample.troupe)
        ? { cpuPercent: summarize(samples.map((sample) => sample.troupe?.cpuPercent ?? NaN)).mean }
        : {}),
      ...(last ? { openStreams: last.counters.open } : {}),
    });
  }
  return points;
}

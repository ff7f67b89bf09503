import type { BenchReport } from './bench-report';
import type { Summary } from './statistics';

/** The report as the text table `npm run bench` prints (and docs/BENCHMARKS.md quotes). Pure. */

/** Pads columns to their widest cell; the first column left-aligned, the others right-aligned. */
export function alignColumns(rows: string[][], gap = '  '): string {
  const widths: number[] = [];
  for (const row of rows)
    row.forEach((cell, index) => (widths[index] = Math.max(widths[index] ?? 0, cell.length)));
  return rows
    .map((row) =>
      row
        .map((cell, index) => (index === 0 ? cell.padEnd(widths[index]) : cell.padStart(widths[index])))
        .join(gap)
        .trimEnd(),
    )
    .join('\n');
}

export function formatMs(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return '–';
  if (value < 1000) return `${value.toFixed(value < 10 ? 1 : 0)} ms`;
  return `${(value / 1000).toFixed(value < 10_000 ? 2 : 1)} s`;
}

const fixed = (value: number | undefined, digits = 1) =>
  value === undefined || !Number.isFinite(value) ? '–' : value.toFixed(digits);
const pct = (value: number | undefined) =>
  value === undefined || !Number.isFinite(value) ? '–' : `${(value * 100).toFixed(1)} %`;

/** `scale` 1 leaves the last column empty: first-event and refusal times are server overhead, which scaling does not touch. */
function latencyRow(label: string, summary: Summary, scale: number): string[] {
  return [
    label,
    String(summary.count),
    formatMs(summary.p50),
    formatMs(summary.p95),
    formatMs(summary.p99),
    formatMs(summary.max),
    scale === 1 ? '' : formatMs(summary.p95 === undefined ? undefined : summary.p95 * scale),
  ];
}

export function formatReportTable(report: BenchReport): string {
  const { settings, chats, goodput, latencyMs } = report;
  const scale = settings.scale;
  const lines: string[] = [];
  const load =
    settings.arrival === 'open'
      ? `open arrivals ${fixed(settings.arrivalRatePerS, 2)}/s`
      : settings.arrival === 'hold'
        ? `${settings.users} streams held`
        : settings.arrival === 'burst'
          ? `${settings.users} chats at once`
          : settings.arrival === 'ramp'
            ? `${settings.users} chats, rate ramping up`
            : `closed loop, ${settings.users} users, think ${formatMs(settings.thinkMs)}`;
  lines.push(
    `${report.scenario} — ${report.variant}   (scale ${scale}, ${load}, ${settings.durationS} s of arrivals + drain)`,
  );
  const quota = settings.quota;
  const unscaled = settings.unscaledQuota;
  lines.push(
    `quota: ${quota.rpm} rpm, ${quota.concurrency} concurrent, ${quota.latencyMs} ms + ${quota.tps} tok/s` +
      (scale === 1
        ? ''
        : `   (unscaled: ${unscaled.rpm} rpm, ${unscaled.concurrency}, ${unscaled.latencyMs} ms + ${unscaled.tps} tok/s)`),
  );
  lines.push('');

  const rows: string[][] = [];
  rows.push([
    'chats',
    `attempted ${chats.attempted}`,
    `completed ${chats.completed}`,
    `refused (503, or while waiting) ${chats.refused}`,
    `failed ${chats.failed}`,
    `timed out ${chats.timedOut}`,
  ]);
  if (chats.released > 0)
    rows.push(['', `released ${chats.released}`, `admitted ${chats.admitted}`, '', '', '']);
  const admission = report.admission;
  rows.push([
    'admission',
    `admitted failures ${admission.admittedFailures} (target 0)`,
    admission.falseRefusals === undefined
      ? 'false refusals n/a (no replay)'
      : `false refusals ${admission.falseRefusals} = ${pct(admission.falseRefusalRate)} of arrivals (target < 2 %; ` +
        `refused whose twin completed ${admission.refusedWhoseTwinCompleted ?? '–'}, forced by the bound ${admission.forcedByBound ?? '–'})`,
    admission.replay
      ? `replay without admission: ${admission.replay.completedWithinDeadline} within the deadline, ${admission.replay.completed} completed, ${admission.replay.failed} failed`
      : '',
    '',
    '',
  ]);
  const provider = report.provider;
  rows.push(
    provider
      ? [
          'provider (sim-llm)',
          `requests ${provider.requests}`,
          `accepted ${provider.accepted}`,
          `429s ${provider.rejected429}`,
          `aborted ${provider.aborted}`,
          `max in flight ${provider.maxInFlight}`,
        ]
      : ['provider (sim-llm)', 'n/a (no --sim-url)', '', '', '', ''],
  );
  lines.push(alignColumns(rows, '   '));
  lines.push('');

  const bound = goodput.bound;
  const boundText = `min(R/60 = ${fixed(bound.rpmBound, 2)}, C/L = ${fixed(bound.concurrencyBound, 2)}) = ${fixed(bound.mu, 2)} calls/s (${bound.binding} binds; L = ${formatMs(bound.meanCallMs)})`;
  lines.push(`LLM goodput      ${fixed(goodput.callsPerS, 2)} calls/s  vs bound ${boundText}`);
  lines.push(
    `                 ratio ${pct(goodput.ratio)} over ${fixed(goodput.windowS, 0)} s after warm-up; demand ${fixed(goodput.demandCallsPerS, 2)} calls/s = ` +
      `${fixed(goodput.demandCallsPerS / bound.mu, 2)}× the bound` +
      (settings.arrival === 'hold'
        ? ' (held streams: SSE_MAX_CONCURRENT limits the work served, so the ratio is not a target)'
        : goodput.demandExceedsBound
          ? ' (demand exceeds it: the ratio is meaningful)'
          : ' (below the bound: the ratio only measures demand)'),
  );
  if (goodput.providerCallsPerS !== undefined)
    lines.push(
      `                 provider accepted ${fixed(goodput.providerCallsPerS, 2)} calls/s in the same window; ${fixed(goodput.callsPerCompletedChat, 2)} calls per completed chat`,
    );
  if (goodput.whileWaiting)
    lines.push(
      `                 while calls waited for a slot (${fixed(goodput.whileWaiting.seconds, 0)} s): the provider completed ` +
        `${fixed(goodput.whileWaiting.callsPerS, 2)} calls/s = ${pct(goodput.whileWaiting.ratio)} of the bound`,
    );
  if (report.waste)
    lines.push(
      `quota waste      ${report.waste.calls} of ${report.provider?.accepted ?? 0} provider calls (${pct(report.waste.ratio)}) went to chats that did not complete`,
    );
  lines.push('');

  lines.push(
    alignColumns([
      ['latency', 'n', 'p50', 'p95', 'p99', 'max', scale === 1 ? '' : `p95 ×${scale}`],
      latencyRow('first event', latencyMs.firstEvent, 1),
      latencyRow('first token', latencyMs.firstToken, scale),
      latencyRow('completion', latencyMs.completion, scale),
      latencyRow('  of it LLM queue wait', latencyMs.llmQueueWait, scale),
      latencyRow('refusal (503)', latencyMs.refusal, 1),
    ]),
  );
  const byAgent = Object.entries(latencyMs.llmWaitByAgent ?? {});
  if (byAgent.length > 0)
    lines.push(
      `LLM wait by agent ${byAgent
        .map(([agent, summary]) => `${agent} p50 ${formatMs(summary.p50)} / p95 ${formatMs(summary.p95)}`)
        .join(', ')}  (per agent turn)`,
    );
  if (report.refusals.total > 0) {
    lines.push(
      `refusals         ${report.refusals.withRetryAfter} of ${report.refusals.total} carried Retry-After (p50 ${formatMs(report.refusals.retryAfterMs.p50)}, max ${formatMs(report.refusals.retryAfterMs.max)})`,
    );
  }
  const queued = report.queuedWait;
  lines.push(
    queued.count === 0
      ? 'queued (SSE line) none of the chats waited for a stream slot'
      : `queued (SSE line) ${queued.count} chats: estimated p50 ${formatMs(queued.estimatedMs.p50)} / p95 ${formatMs(queued.estimatedMs.p95)}, ` +
          `actual p50 ${formatMs(queued.actualMs.p50)} / p95 ${formatMs(queued.actualMs.p95)}, |error| p50 ${formatMs(queued.absoluteErrorMs.p50)}, actual/estimate p50 ${fixed(queued.medianRatio, 2)}`,
  );
  const server = report.server;
  lines.push(
    `server (Troupe)  RSS ${fixed(server.baselineRssMb, 0)} MB at rest, peak ${fixed(server.peakRssMb, 0)} MB; CPU mean ${fixed(server.meanCpuPercent, 0)} %, peak ${fixed(server.peakCpuPercent, 0)} % of one core`,
  );
  if (server.cpuMsPerChat !== undefined || server.cpuMsPerCall !== undefined)
    lines.push(
      `                 CPU ${fixed(server.cpuMsPerChat, 2)} ms per completed chat, ${fixed(server.cpuMsPerCall, 2)} ms per provider call (all of Troupe's CPU over the run)`,
    );
  const loop = server.eventLoop;
  if (loop) {
    lines.push(
      `event loop       max delay ${formatMs(loop.maxDelayMs)} (worst per-second p99 ${formatMs(loop.worstP99Ms)}); ` +
        `GC pauses ≥ 50 ms: ${loop.gcPausesOver50Ms}, longest ${formatMs(loop.longestGcMs)}` +
        (loop.stalls.length > 0
          ? `; stalls ≥ 100 ms at ${loop.stalls
              .slice(0, 5)
              .map((stall) => `${stall.t} s (${stall.delayMs} ms, GC ${stall.gcMs} ms)`)
              .join(', ')}`
          : ''),
    );
  }
  lines.push(
    `load generator   CPU mean ${fixed(report.loadGenerator.meanCpuPercent, 0)} %, peak ${fixed(report.loadGenerator.peakCpuPercent, 0)} %; sim-llm CPU mean ${fixed(report.loadGenerator.simMeanCpuPercent, 0)} %`,
  );
  if (report.streams) {
    const streams = report.streams;
    lines.push(
      `streams          peak ${streams.peakOpen} open (${streams.peakWaiting} waiting as queued); RSS ${fixed(streams.rssAtPeakMb, 0)} MB at the peak = ` +
        `${fixed(streams.rssPerStreamKb, 1)} KB per stream over the resting RSS; ${streams.queuedReceived} streams received \`queued\``,
    );
    lines.push(
      `                 V8 heap ${fixed(streams.heapAtPeakMb, 0)} MB at the peak = ${fixed(streams.heapPerStreamKb, 1)} KB per stream; ` +
        `${streams.queuedEvents} \`queued\` events delivered (${fixed(streams.queuedEventsPerS, 0)}/s)`,
    );
    if (streams.rssAfterReleaseMb !== undefined || streams.waitingAfterRelease !== undefined) {
      lines.push(
        `                 3 s after every stream was released: RSS ${fixed(streams.rssAfterReleaseMb, 0)} MB, ${streams.waitingAfterRelease ?? '–'} runs still waiting`,
      );
    }
  }
  const codes = Object.entries(chats.codes).sort((a, b) => b[1] - a[1]);
  if (codes.length > 0)
    lines.push(`not completed    ${codes.map(([code, count]) => `${code} ${count}`).join(', ')}`);
  lines.push('');
  lines.push('targets');
  lines.push(
    alignColumns(
      report.targets.map((target) => [
        `  ${target.pass === undefined ? 'n/a ' : target.pass ? 'PASS' : 'MISS'} ${target.name}`,
        target.value,
        `(target ${target.target})`,
        target.note ?? '',
      ]),
    ),
  );
  for (const note of report.notes) lines.push(`note: ${note}`);
  return lines.join('\n');
}

/** Several variants of one scenario side by side (priority, phase2). */
export function formatComparison(reports: BenchReport[]): string {
  const header = ['', ...reports.map((report) => report.variant)];
  const row = (label: string, value: (report: BenchReport) => string) => [label, ...reports.map(value)];
  const scaleOf = (report: BenchReport) => report.settings.scale;
  return alignColumns([
    header,
    row('chats completed', (report) => String(report.chats.completed)),
    row('refused (503 or waiting)', (report) => String(report.chats.refused)),
    row('failed / timed out', (report) => `${report.chats.failed} / ${report.chats.timedOut}`),
    row('admitted failures', (report) => String(report.admission.admittedFailures)),
    row('false refusals', (report) =>
      report.admission.falseRefusals === undefined
        ? 'n/a'
        : `${report.admission.falseRefusals} (${pct(report.admission.falseRefusalRate)})`,
    ),
    row('provider 429s', (report) => (report.provider ? String(report.provider.rejected429) : 'n/a')),
    row('goodput calls/s', (report) => fixed(report.goodput.callsPerS, 2)),
    row('bound calls/s', (report) => fixed(report.goodput.bound.mu, 2)),
    row('goodput / bound', (report) => pct(report.goodput.ratio)),
    row('quota waste', (report) => pct(report.waste?.ratio)),
    row('completion p50', (report) => formatMs(report.latencyMs.completion.p50)),
    row('completion p95', (report) => formatMs(report.latencyMs.completion.p95)),
    row('completion p99', (report) => formatMs(report.latencyMs.completion.p99)),
    row('p95 unscaled', (report) => formatMs((report.latencyMs.completion.p95 ?? NaN) * scaleOf(report))),
    row('first token p95', (report) => formatMs(report.latencyMs.firstToken.p95)),
    row('server peak RSS', (report) => `${fixed(report.server.peakRssMb, 0)} MB`),
    row('CPU ms per chat', (report) => fixed(report.server.cpuMsPerChat, 2)),
  ]);
}

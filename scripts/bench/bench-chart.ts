import type { BenchReport, TimelinePoint } from './bench-report';
import { niceStep } from './statistics';

/**
 * The run's chart as a hand-written SVG (no dependency, diffs well, renders on GitHub): on the
 * left the distribution of completion latency with p50/p95/p99 marked, on the right goodput and
 * provider calls per second over time against the quota bound — or, for sse-capacity, open streams
 * and the server's memory over time. Pure.
 */

const WIDTH = 980;
const HEIGHT = 380;
const PANEL = { top: 56, bottom: 316, left: [60, 560], width: 380 };
const COLORS = {
  bars: '#7aa6d8',
  good: '#2b8a3e',
  provider: '#868e96',
  bound: '#c92a2a',
  p: '#495057',
  streams: '#1c7ed6',
  rss: '#e8590c',
};

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

interface Axis {
  max: number;
  step: number;
}

function axis(maxValue: number, ticks = 5): Axis {
  const step = niceStep(Math.max(maxValue, 1e-9) / ticks);
  return { max: Math.max(step, Math.ceil(maxValue / step) * step), step };
}

function label(
  x: number,
  y: number,
  text: string,
  options: { anchor?: string; size?: number; color?: string; weight?: string } = {},
): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" font-size="${options.size ?? 11}" text-anchor="${options.anchor ?? 'start'}" fill="${options.color ?? '#212529'}"${options.weight ? ` font-weight="${options.weight}"` : ''}>${escape(text)}</text>`;
}

/** Axes, grid and tick labels of one panel; returns the SVG and the value → pixel mappers. */
function frame(
  left: number,
  xAxis: Axis,
  yAxis: Axis,
  xTitle: string,
  yTitle: string,
  xFormat: (value: number) => string,
) {
  const { top, bottom, width } = PANEL;
  const x = (value: number) => left + (value / xAxis.max) * width;
  const y = (value: number) => bottom - (value / yAxis.max) * (bottom - top);
  const parts: string[] = [];
  for (let value = 0; value <= yAxis.max + 1e-9; value += yAxis.step) {
    parts.push(
      `<line x1="${left}" x2="${left + width}" y1="${y(value).toFixed(1)}" y2="${y(value).toFixed(1)}" stroke="#e9ecef"/>`,
    );
    parts.push(label(left - 6, y(value) + 4, formatTick(value), { anchor: 'end', size: 10 }));
  }
  for (let value = 0; value <= xAxis.max + 1e-9; value += xAxis.step) {
    parts.push(
      `<line x1="${x(value).toFixed(1)}" x2="${x(value).toFixed(1)}" y1="${bottom}" y2="${bottom + 4}" stroke="#495057"/>`,
    );
    parts.push(label(x(value), bottom + 16, xFormat(value), { anchor: 'middle', size: 10 }));
  }
  parts.push(`<line x1="${left}" x2="${left + width}" y1="${bottom}" y2="${bottom}" stroke="#495057"/>`);
  parts.push(`<line x1="${left}" x2="${left}" y1="${top}" y2="${bottom}" stroke="#495057"/>`);
  parts.push(label(left + width / 2, bottom + 34, xTitle, { anchor: 'middle' }));
  parts.push(
    `<text x="${left - 44}" y="${(top + bottom) / 2}" font-size="11" text-anchor="middle" transform="rotate(-90 ${left - 44} ${(top + bottom) / 2})">${escape(yTitle)}</text>`,
  );
  return { svg: parts.join(''), x, y };
}

function formatTick(value: number): string {
  if (value >= 1000 && value % 1000 === 0) return `${value / 1000}k`;
  return Number.isInteger(value) ? String(value) : value.toFixed(value < 1 ? 2 : 1);
}

function polyline(points: Array<[number, number]>, color: string, dashed = false): string {
  if (points.length === 0) return '';
  const path = points.map(([px, py]) => `${px.toFixed(1)},${py.toFixed(1)}`).join(' ');
  return `<polyline points="${path}" fill="none" stroke="${color}" stroke-width="2"${dashed ? ' stroke-dasharray="6 4"' : ''}/>`;
}

function latencyPanel(report: BenchReport): string {
  const left = PANEL.left[0];
  const { binMs, counts } = report.histogram;
  const firstEvent = report.histogramOf === 'first event';
  const title = label(
    left,
    40,
    firstEvent
      ? `Time to the first event of ${report.chats.admitted} streams`
      : `Completion latency of ${report.chats.completed} completed chats`,
    { weight: 'bold', size: 12 },
  );
  if (counts.length === 0)
    return (
      title +
      label(left + PANEL.width / 2, (PANEL.top + PANEL.bottom) / 2, 'nothing to show', {
        anchor: 'middle',
        color: '#868e96',
      })
    );
  const seconds = (binMs * counts.length) / 1000;
  const xAxis = axis(seconds, 6);
  const yAxis = axis(Math.max(...counts), 5);
  const scale = report.settings.scale;
  const xTitle = scale === 1 ? 'seconds' : `seconds as measured (×${scale} = unscaled)`;
  const { svg, x, y } = frame(left, xAxis, yAxis, xTitle, firstEvent ? 'streams' : 'chats', formatTick);
  const bars = counts
    .map((count, index) => {
      const x0 = x((index * binMs) / 1000);
      const x1 = x(((index + 1) * binMs) / 1000);
      return count === 0
        ? ''
        : `<rect x="${x0.toFixed(1)}" y="${y(count).toFixed(1)}" width="${Math.max(0.5, x1 - x0 - 1).toFixed(1)}" height="${(PANEL.bottom - y(count)).toFixed(1)}" fill="${COLORS.bars}"/>`;
    })
    .join('');
  const completion = firstEvent ? report.latencyMs.firstEvent : report.latencyMs.completion;
  const markers = (['p50', 'p95', 'p99'] as const)
    .map((key, index) => {
      const value = completion[key];
      if (value === undefined) return '';
      const px = x(value / 1000);
      return (
        `<line x1="${px.toFixed(1)}" x2="${px.toFixed(1)}" y1="${PANEL.top}" y2="${PANEL.bottom}" stroke="${COLORS.p}" stroke-dasharray="3 3"/>` +
        label(px + 3, PANEL.top + 10 + index * 12, `${key} ${(value / 1000).toFixed(1)} s`, {
          size: 10,
          color: COLORS.p,
        })
      );
    })
    .join('');
  return title + svg + bars + markers;
}

function goodputPanel(report: BenchReport): string {
  const left = PANEL.left[1];
  const points = report.timeline;
  const bucketS = points.length > 1 ? points[1].t - points[0].t : 1;
  const spanS = points.length === 0 ? 1 : points[points.length - 1].t + bucketS;
  const bound = report.goodput.bound.mu;
  const provider = smooth(points, (point) => point.providerCalls);
  const goodput = smooth(points, (point) => point.goodput);
  const highest = Math.max(
    bound,
    ...provider.map(([, value]) => value),
    ...goodput.map(([, value]) => value),
  );
  const xAxis = axis(spanS, 6);
  const yAxis = axis(highest * 1.1, 5);
  const { svg, x, y } = frame(
    left,
    xAxis,
    yAxis,
    'seconds since the first arrival',
    'LLM calls per second',
    formatTick,
  );
  const mid = (t: number) => x(t + bucketS / 2);
  const arrivalsEnd = x(Math.min(spanS, report.settings.durationS));
  const warmup = x(Math.min(spanS, report.settings.warmupS));
  const window = `<rect x="${warmup.toFixed(1)}" y="${PANEL.top}" width="${Math.max(0, arrivalsEnd - warmup).toFixed(1)}" height="${PANEL.bottom - PANEL.top}" fill="#f1f3f5"/>`;
  return (
    label(left, 40, 'Goodput over time (10 s average; shaded: measured window)', {
      weight: 'bold',
      size: 12,
    }) +
    window +
    svg +
    `<line x1="${left}" x2="${left + PANEL.width}" y1="${y(bound).toFixed(1)}" y2="${y(bound).toFixed(1)}" stroke="${COLORS.bound}" stroke-dasharray="6 4" stroke-width="1.5"/>` +
    polyline(
      provider.map(([t, value]) => [mid(t), y(value)]),
      COLORS.provider,
    ) +
    polyline(
      goodput.map(([t, value]) => [mid(t), y(value)]),
      COLORS.good,
    ) +
    legend(left + 8, PANEL.top + 12, [
      [COLORS.good, 'goodput (calls of completed chats)'],
      [COLORS.provider, 'provider calls accepted'],
      [COLORS.bound, `bound mu = ${bound.toFixed(2)} calls/s`],
    ])
  );
}

/**
 * A centred 10 s moving average: Troupe spreads each minute's starts over 10 s windows, so
 * per-bucket rates swing between bursts and pauses that say nothing about the rate itself.
 */
function smooth(
  points: TimelinePoint[],
  value: (point: TimelinePoint) => number | undefined,
): Array<[number, number]> {
  const known = points.filter((point) => value(point) !== undefined);
  return known.map((point) => {
    const near = known.filter((other) => Math.abs(other.t - point.t) <= 5);
    return [point.t, near.reduce((sum, other) => sum + value(other)!, 0) / near.length];
  });
}

function streamsPanel(report: BenchReport): string {
  const left = PANEL.left[1];
  const points = report.timeline;
  const bucketS = points.length > 1 ? points[1].t - points[0].t : 1;
  const spanS = points.length === 0 ? 1 : points[points.length - 1].t + bucketS;
  const streams = axis(Math.max(1, ...points.map((point) => point.openStreams ?? 0)) * 1.1, 5);
  const rssMax = Math.max(1, ...points.map((point) => point.rssMb ?? 0));
  const { svg, x, y } = frame(
    left,
    axis(spanS, 6),
    streams,
    'seconds since the first stream',
    'open streams',
    formatTick,
  );
  const mid = (t: number) => x(t + bucketS / 2);
  const rssY = (value: number) => PANEL.bottom - (value / (rssMax * 1.1)) * (PANEL.bottom - PANEL.top);
  return (
    label(left, 40, 'Open streams and server memory', { weight: 'bold', size: 12 }) +
    svg +
    polyline(
      points
        .filter((point) => point.openStreams !== undefined)
        .map((point) => [mid(point.t), y(point.openStreams!)]),
      COLORS.streams,
    ) +
    polyline(
      points.filter((point) => point.rssMb !== undefined).map((point) => [mid(point.t), rssY(point.rssMb!)]),
      COLORS.rss,
      true,
    ) +
    label(left + PANEL.width, PANEL.top - 4, `${(rssMax * 1.1).toFixed(0)} MB`, {
      anchor: 'end',
      size: 10,
      color: COLORS.rss,
    }) +
    legend(left + 8, PANEL.top + 12, [
      [COLORS.streams, 'open streams (left axis)'],
      [COLORS.rss, `Troupe RSS, MB (0–${(rssMax * 1.1).toFixed(0)})`],
    ])
  );
}

function legend(x: number, y: number, entries: Array<[string, string]>): string {
  return entries
    .map(
      ([color, text], index) =>
        `<rect x="${x}" y="${y + index * 14 - 8}" width="14" height="3" fill="${color}"/>` +
        label(x + 20, y + index * 14 - 4, text, { size: 10 }),
    )
    .join('');
}

export function renderChart(report: BenchReport): string {
  const scaleText = report.settings.scale === 1 ? '' : `, scale ${report.settings.scale}`;
  const heading = `${report.scenario} — ${report.variant} (${report.startedAt.slice(0, 16).replace('T', ' ')} UTC${scaleText})`;
  const right = report.settings.arrival === 'hold' ? streamsPanel(report) : goodputPanel(report);
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="Helvetica, Arial, sans-serif">` +
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="#ffffff"/>` +
    label(WIDTH / 2, 20, heading, { anchor: 'middle', size: 14, weight: 'bold' }) +
    latencyPanel(report) +
    right +
    '</svg>\n'
  );
}

import type { LoadCounters } from './load-driver';
import type { Sample } from './resource-sampler';

/**
 * A one-line progress bar on stderr while a run goes on. On a terminal it redraws in place twice
 * a second; in a log file (nohup) it writes a plain line every 15 s instead of thousands of \r frames.
 */

export interface ProgressSource {
  label: string;
  startAt: number;
  arrivalsEndAt: number;
  counters(): LoadCounters;
  lastSample(): Sample | undefined;
}

export function progressLine(source: ProgressSource, at: number, width = 24): string {
  const total = Math.max(1, source.arrivalsEndAt - source.startAt);
  const elapsed = Math.max(0, at - source.startAt);
  const share = Math.min(1, elapsed / total);
  const filled = Math.round(share * width);
  const bar = `${'='.repeat(Math.max(0, filled - 1))}${filled > 0 ? '>' : ''}${' '.repeat(width - filled)}`;
  const counters = source.counters();
  const sample = source.lastSample();
  const phase =
    at < source.startAt
      ? 'starting'
      : at < source.arrivalsEndAt
        ? `${Math.floor(elapsed / 1000)}/${Math.round(total / 1000)} s`
        : `draining ${Math.floor((at - source.arrivalsEndAt) / 1000)} s`;
  const parts = [
    `${source.label} [${bar}] ${phase}`,
    `open ${counters.open}${counters.waiting > 0 ? ` (queued ${counters.waiting})` : ''}`,
    `done ${counters.completed}`,
    `refused ${counters.refused}`,
    `failed ${counters.failed}`,
    `timeout ${counters.timedOut}`,
  ];
  if (counters.skipped > 0) parts.push(`skipped ${counters.skipped}`);
  if (sample?.sim?.stats) parts.push(`429s ${sample.sim.stats.rejected429}`);
  if (sample?.troupe)
    parts.push(
      `RSS ${Math.round(sample.troupe.rssKb / 1024)} MB CPU ${Math.round(sample.troupe.cpuPercent)} %`,
    );
  return parts.join(' | ');
}

export class ProgressBar {
  private timer?: NodeJS.Timeout;
  private readonly tty = process.stderr.isTTY === true;
  private lastPlainAt = 0;

  constructor(
    private readonly source: ProgressSource,
    private readonly now: () => number,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.draw(), this.tty ? 500 : 1000);
  }

  stop(): void {
    clearInterval(this.timer);
    this.draw(true);
    if (this.tty) process.stderr.write('\n');
  }

  private draw(final = false): void {
    const at = this.now();
    const line = progressLine(this.source, at);
    if (this.tty) {
      const columns = process.stderr.columns ?? 160;
      process.stderr.write(
        `\r${line.slice(0, columns - 1).padEnd(Math.min(columns - 1, line.length))}\x1b[K`,
      );
    } else if (final || at - this.lastPlainAt >= 15_000) {
      this.lastPlainAt = at;
      process.stderr.write(`${line}\n`);
    }
  }
}

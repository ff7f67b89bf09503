import fs from 'node:fs';
import { now } from './chat-client';
import type { LoadCounters } from './load-driver';
import type { SimServerStats } from '../../api/llm/sim/sim-server';

/**
 * Once a second during a run: the servers' memory and CPU from /proc, the sim's quota counters,
 * Troupe's SSE and queue status, and the load generator's own counters. The samples make the
 * timeline of the report and its chart.
 */

/** Linux reports CPU time in clock ticks; 100 per second on every mainstream kernel config. */
const CLOCK_TICKS_PER_SECOND = 100;

export interface ProcessReading {
  rssKb: number;
  /** Peak resident set since the process started (VmHWM). */
  peakRssKb: number;
  /** utime + stime, seconds. */
  cpuSeconds: number;
}

/** Reads /proc/<pid>/status and /proc/<pid>/stat; undefined once the process is gone. */
export function readProcess(pid: number): ProcessReading | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return {
      rssKb: statusField(status, 'VmRSS'),
      peakRssKb: statusField(status, 'VmHWM'),
      cpuSeconds: parseCpuSeconds(stat),
    };
  } catch {
    return undefined;
  }
}

export function statusField(status: string, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+)\\s*kB`, 'm').exec(status);
  return match ? Number(match[1]) : 0;
}

/** utime + stime from /proc/<pid>/stat (fields 14 and 15; the command name may hold spaces and parentheses). */
export function parseCpuSeconds(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

/** One line of the server's diagnostics file (troupe-process.ts writes one a second). */
export interface ServerDiagnostics {
  /** Absolute epoch ms at the end of the second. */
  at: number;
  loopMaxMs: number;
  loopP99Ms: number;
  /** V8 heap in use (live objects plus garbage not collected yet). */
  heapUsedMb?: number;
  /** GC pauses of at least 10 ms: start (epoch ms), duration, V8's kind (4 = major mark-compact). */
  gc: Array<{ at: number; ms: number; kind?: number }>;
}

/** Reads the diagnostics file; lines that do not parse (a write cut by the shutdown) are skipped. */
export function readDiagnostics(file: string): ServerDiagnostics[] {
  if (!fs.existsSync(file)) return [];
  const lines: ServerDiagnostics[] = [];
  for (const text of fs.readFileSync(file, 'utf8').split('\n')) {
    try {
      if (text.trim()) lines.push(JSON.parse(text) as ServerDiagnostics);
    } catch {
      // A partial last line.
    }
  }
  return lines;
}

/** GET /sim/stats, as sim-llm defines it. */
export type SimStats = SimServerStats;

export interface Sample {
  /** Absolute epoch ms. */
  at: number;
  /** cpuSeconds: Troupe's utime + stime since it started (for CPU per chat over a window). */
  troupe?: { rssKb: number; peakRssKb: number; cpuPercent: number; cpuSeconds?: number };
  sim?: { cpuPercent: number; stats?: SimStats };
  /** The load generator's processes together (main and workers), percent of one core. */
  loadCpuPercent?: number;
  sse?: { active: number; waiting: number; openStreams?: number };
  queue?: { queueLength: number; activeRequests: number };
  counters: LoadCounters;
}

export interface SamplerSources {
  troupePid?: number;
  troupeUrl: string;
  simPid?: number;
  simUrl?: string;
  /** Total CPU seconds of the load generator so far (main + workers). */
  loadCpuSeconds: () => number;
  counters: () => LoadCounters;
}

export class ResourceSampler {
  readonly samples: Sample[] = [];
  private timer?: NodeJS.Timeout;
  private previous = new Map<string, { at: number; cpuSeconds: number }>();
  private sseAvailable = true;
  private queueAvailable = true;

  constructor(private readonly sources: SamplerSources) {}

  start(intervalMs = 1000): void {
    const tick = () => {
      void this.sample().finally(() => {
        if (this.timer) this.timer = setTimeout(tick, intervalMs);
      });
    };
    this.timer = setTimeout(tick, 0);
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Takes one sample now (also used for the baseline and the final reading). */
  async sample(): Promise<Sample> {
    const at = now();
    const sample: Sample = { at, counters: { ...this.sources.counters() } };
    const { troupePid, simPid, simUrl, troupeUrl } = this.sources;
    const troupe = troupePid ? readProcess(troupePid) : undefined;
    if (troupe)
      sample.troupe = {
        rssKb: troupe.rssKb,
        peakRssKb: troupe.peakRssKb,
        cpuPercent: this.cpuPercent('troupe', at, troupe.cpuSeconds),
        cpuSeconds: troupe.cpuSeconds,
      };
    const sim = simPid ? readProcess(simPid) : undefined;
    const [simStats, sse, queue] = await Promise.all([
      simUrl ? getJson<SimStats>(`${simUrl}/sim/stats`) : undefined,
      this.sseAvailable
        ? getJson<{ active: number; waiting: number; openStreams?: number }>(`${troupeUrl}/api/sse/status`)
        : undefined,
      this.queueAvailable
        ? getJson<{ queue?: { queueLength: number; activeRequests: number } }>(
            `${troupeUrl}/api/queue/status`,
          )
        : undefined,
    ]);
    if (sim || simStats)
      sample.sim = {
        cpuPercent: sim ? this.cpuPercent('sim', at, sim.cpuSeconds) : 0,
        ...(simStats ? { stats: simStats } : {}),
      };
    sample.loadCpuPercent = this.cpuPercent('load', at, this.sources.loadCpuSeconds());
    if (sse === null) this.sseAvailable = false;
    else if (sse) sample.sse = { active: sse.active, waiting: sse.waiting, openStreams: sse.openStreams };
    if (queue === null) this.queueAvailable = false;
    else if (queue?.queue)
      sample.queue = { queueLength: queue.queue.queueLength, activeRequests: queue.queue.activeRequests };
    this.samples.push(sample);
    return sample;
  }

  private cpuPercent(key: string, at: number, cpuSeconds: number): number {
    const previous = this.previous.get(key);
    this.previous.set(key, { at, cpuSeconds });
    if (!previous || at <= previous.at) return 0;
    return ((cpuSeconds - previous.cpuSeconds) / ((at - previous.at) / 1000)) * 100;
  }
}

/** GET → JSON; null when the route does not exist (404), undefined when it failed or was slow. */
export async function getJson<T>(url: string, timeoutMs = 2000): Promise<T | null | undefined> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (response.status === 404) return null;
    if (!response.ok) return undefined;
    return (await response.json()) as T;
  } catch {
    return undefined;
  }
}

export async function postJson<T>(url: string, body: unknown = {}, timeoutMs = 5000): Promise<T | undefined> {
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    return response.ok ? ((await response.json()) as T) : undefined;
  } catch {
    return undefined;
  }
}

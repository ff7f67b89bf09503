import fs from 'node:fs';
import os from 'node:os';

/**
 * The two figures `/api/health` shows as the brief's `"45%"` strings, and what they measure:
 * - cpu: this process's CPU time (user + system) over the interval since the previous sample, as a
 *   share of one core (so a process busy on two threads can read above 100 %);
 * - memory: this process's resident set size as a share of its memory limit — the cgroup limit
 *   when one is set (a container, a Kubernetes pod), else the machine's total memory.
 */
export interface ProcessUsage {
  cpuPercent: number;
  memoryPercent: number;
  rssBytes: number;
  memoryLimitBytes: number;
  memoryLimitSource: 'cgroup' | 'system';
  intervalMs: number;
}

const CGROUP_LIMIT_FILES = ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes'];

export class ProcessUsageSampler {
  private lastUsage = process.cpuUsage();
  private lastTime = process.hrtime.bigint();
  private readonly limit = memoryLimit();

  sample(): ProcessUsage {
    const usage = process.cpuUsage(this.lastUsage);
    const now = process.hrtime.bigint();
    const elapsedMicros = Number(now - this.lastTime) / 1000;
    this.lastUsage = process.cpuUsage();
    this.lastTime = now;
    const rssBytes = process.memoryUsage.rss();
    return {
      cpuPercent: elapsedMicros > 0 ? ((usage.user + usage.system) / elapsedMicros) * 100 : 0,
      memoryPercent: (rssBytes / this.limit.bytes) * 100,
      rssBytes,
      memoryLimitBytes: this.limit.bytes,
      memoryLimitSource: this.limit.source,
      intervalMs: Math.round(elapsedMicros / 1000),
    };
  }
}

function memoryLimit(): { bytes: number; source: 'cgroup' | 'system' } {
  const total = os.totalmem();
  for (const file of CGROUP_LIMIT_FILES) {
    try {
      const text = fs.readFileSync(file, 'utf8').trim();
      const bytes = Number(text);
      // "max" or cgroup v1's huge sentinel mean no limit: the machine's memory is the bound then.
      if (Number.isFinite(bytes) && bytes > 0 && bytes < total) return { bytes, source: 'cgroup' };
    } catch {
      // Not in a cgroup that exposes this file (macOS, an older kernel): try the next one.
    }
  }
  return { bytes: total, source: 'system' };
}

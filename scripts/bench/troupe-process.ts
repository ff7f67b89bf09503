/**
 * Troupe's entry as the benchmark starts it: exactly server.ts (config from the environment,
 * listen, clean shutdown on SIGTERM), under a command line of its own — other tools on a shared
 * machine that stop stray "server" processes by name then leave a measured server alone.
 *
 * With BENCH_DIAGNOSTICS_FILE set it also appends, once a second, the event loop's delay and the
 * garbage-collection pauses of the last second: what explains a slow answer from inside the
 * server. The histogram samples every 10 ms, which costs nothing measurable.
 */
import fs from 'node:fs';
import { PerformanceObserver, monitorEventLoopDelay, performance } from 'node:perf_hooks';
import type { ServerDiagnostics } from './resource-sampler';
import '../../server';

const file = process.env.BENCH_DIAGNOSTICS_FILE;
if (file) {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  let pauses: ServerDiagnostics['gc'] = [];
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (entry.duration < 10) continue;
      const kind = (entry as { detail?: { kind?: number } }).detail?.kind;
      pauses.push({
        at: performance.timeOrigin + entry.startTime,
        ms: entry.duration,
        ...(kind !== undefined ? { kind } : {}),
      });
    }
  }).observe({ entryTypes: ['gc'] });
  setInterval(() => {
    const line: ServerDiagnostics = {
      at: Date.now(),
      loopMaxMs: delay.max / 1e6,
      loopP99Ms: delay.percentile(99) / 1e6,
      heapUsedMb: process.memoryUsage().heapUsed / 2 ** 20,
      gc: pauses,
    };
    fs.appendFileSync(file, `${JSON.stringify(line)}\n`);
    delay.reset();
    pauses = [];
  }, 1000).unref();
}

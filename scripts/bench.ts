/**
 * npm run bench -- --scenario NAME [--users N] [--rpm R] [--concurrency C] [--latency-ms L] [--tps T]
 *                   [--duration S] [--url URL] [--scale X] …   (--help lists every flag)
 * npm run bench -- --scenario matrix [--seed S] [--quick | --limit N | --only w07]: generated workloads.
 *
 * The load benchmark of issue 6: starts sim-llm with the quota and Troupe pointed at it (each in its
 * own process), drives users over real SSE, and prints the figures against the quota bound
 * mu = min(R/60, C/L). Each run writes report.json, chart.svg and table.txt under bench-results/.
 */
import { BENCH_USAGE, BenchArgumentError, parseBenchArgs } from './bench/bench-options';
import { formatComparison } from './bench/bench-table';
import { runCpuScenario } from './bench/cpu-scenario';
import { runScenario, type RunControl } from './bench/run-scenario';
import type { BenchReport } from './bench/bench-report';
import { runFocusedScenario } from './bench/focused-scenarios';
import { runMatrix } from './bench/matrix-scenario';

async function main(): Promise<void> {
  // cache and parallel compare Troupe settings side by side and print their own figures.
  if (await runFocusedScenario(process.argv.slice(2))) return;
  let options;
  try {
    options = parseBenchArgs(process.argv.slice(2));
  } catch (error) {
    if (error instanceof BenchArgumentError) {
      process.stderr.write(`bench: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  if (!options) {
    process.stdout.write(`${BENCH_USAGE}\n`);
    return;
  }
  const control: RunControl = {};
  let interrupts = 0;
  process.on('SIGINT', () => {
    interrupts++;
    if (interrupts >= 3) process.exit(130);
    process.stderr.write(
      interrupts === 1
        ? '\nbench: stopping arrivals, draining open chats (Ctrl-C again to end them now)\n'
        : '\nbench: ending every open stream\n',
    );
    control.onInterrupt?.(interrupts);
  });

  if (options.scenario.runner === 'cpu') {
    const { directory, table } = await runCpuScenario(options, options.scenario.runs[0]);
    process.stdout.write(`\n${table}\n\nresults: ${directory}\n`);
    return;
  }
  if (options.scenario.name === 'matrix') {
    await runMatrix(options, control, () => interrupts > 0);
    return;
  }
  const reports: BenchReport[] = [];
  for (const spec of options.scenario.runs) {
    if (interrupts > 0) break;
    const { report, directory, table } = await runScenario(options, spec, control);
    reports.push(report);
    process.stdout.write(`\n${table}\n\nresults: ${directory}\n`);
  }
  if (reports.length > 1)
    process.stdout.write(`\n${options.scenario.name}: side by side\n${formatComparison(reports)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});

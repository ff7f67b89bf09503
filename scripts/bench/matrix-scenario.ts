import fs from 'node:fs';
import path from 'node:path';
import type { BenchOptions } from './bench-options';
import { describeWorkload, estimatedSeconds } from './matrix-selection';
import { formatMatrixResult, formatMatrixTable, matrixResult, type MatrixResult } from './matrix-results';
import { machineInfo, runScenario, type RunControl } from './run-scenario';
import { REPO_ROOT } from './server-processes';

/**
 * Runs the `matrix` scenario's workloads one after the other (each cold, then replayed with
 * admission off), printing each workload's parameters before it runs and its figures against the
 * pass criteria after; matrix.json (seed, every workload's parameters and results) is rewritten
 * after each, so an interrupted run keeps what it measured.
 */
export async function runMatrix(
  options: BenchOptions,
  control: RunControl,
  interrupted: () => boolean,
): Promise<{ results: MatrixResult[]; file: string }> {
  const runs = options.scenario.runs;
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  const directory = path.resolve(REPO_ROOT, options.outDir, `${stamp}-matrix-seed-${options.seed}`);
  fs.mkdirSync(directory, { recursive: true });
  const file = path.join(directory, 'matrix.json');
  const estimateS = runs.reduce((sum, spec) => sum + estimatedSeconds(spec.matrix!), 0);
  const say = (text: string) => process.stdout.write(`${text}\n`);
  say(
    `matrix: seed ${options.seed}, ${runs.length} workload${runs.length === 1 ? '' : 's'}, each on a cold server and ` +
      `replayed with admission off (about ${Math.ceil(estimateS / 60)} min)`,
  );
  say(`reproduce: npm run bench -- ${process.argv.slice(2).join(' ')}`);
  for (const spec of runs) say(`  ${describeWorkload(spec.matrix!)}`);

  const startedAt = Date.now();
  const results: MatrixResult[] = [];
  const write = () =>
    fs.writeFileSync(
      file,
      `${JSON.stringify(
        {
          scenario: 'matrix',
          seed: options.seed,
          command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
          machine: machineInfo(),
          startedAt: new Date(startedAt).toISOString(),
          elapsedS: Math.round((Date.now() - startedAt) / 1000),
          criteria: {
            provider429: 0,
            admittedFailed: 0,
            falseRefusalRate: '< 0.02 of arrivals (the replay twin completed within CHAT_TIMEOUT_MS)',
            refusalsBelowCapacity: '0 (refused while demand ≤ 0.9x capacity)',
          },
          workloads: runs.map((spec) => spec.matrix),
          results,
        },
        null,
        2,
      )}\n`,
    );
  write();
  for (const [index, spec] of runs.entries()) {
    if (interrupted()) break;
    const workload = spec.matrix!;
    say(`\n[${index + 1}/${runs.length}] ${describeWorkload(workload)}`);
    const runStarted = Date.now();
    const run = await runScenario({ ...options, seed: workload.loadSeed }, spec, control);
    const result = matrixResult({ spec, report: run.report, records: run.records, directory: run.directory });
    results.push(result);
    write();
    say(
      `${formatMatrixResult(result)}\n  (${Math.round((Date.now() - runStarted) / 1000)} s with its replay; ${run.directory})`,
    );
  }
  say(
    `\nmatrix, seed ${options.seed}: ${Math.round((Date.now() - startedAt) / 1000)} s in all\n${formatMatrixTable(results)}`,
  );
  say(`\nresults: ${file}`);
  return { results, file };
}

/**
 * npx tsx scripts/bench/collect-results.ts [--out bench-results] [--docs docs/bench]
 *
 * For docs/BENCHMARKS.md: finds the latest run of every scenario variant under the results folder,
 * draws its chart into docs/bench/<scenario>[-<variant>].svg and prints, per run, the exact command,
 * the machine and the table as Markdown, ready to paste next to the analysis.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { BenchReport } from './bench-report';
import { renderChart } from './bench-chart';
import { formatComparison, formatReportTable } from './bench-table';
import { SCENARIOS } from './scenarios';
import { REPO_ROOT } from './server-processes';

function flag(name: string, fallback: string): string {
  const index = process.argv.indexOf(name);
  return index >= 0 && process.argv[index + 1] ? process.argv[index + 1] : fallback;
}

const slug = (text: string) => text.replace(/[^a-z0-9]+/gi, '-').toLowerCase();

function main(): void {
  const results = path.resolve(REPO_ROOT, flag('--out', 'bench-results'));
  const docs = path.resolve(REPO_ROOT, flag('--docs', 'docs/bench'));
  fs.mkdirSync(docs, { recursive: true });
  const latest = new Map<string, { report: BenchReport }>();
  // Folder names start with an ISO timestamp, so sorting them sorts the runs by time.
  for (const name of fs.readdirSync(results).sort()) {
    const file = path.join(results, name, 'report.json');
    if (!fs.existsSync(file)) continue;
    const report = JSON.parse(fs.readFileSync(file, 'utf8')) as BenchReport;
    latest.set(`${report.scenario}\u0000${report.variant}`, { report });
  }
  const byScenario = new Map<string, BenchReport[]>();
  // In the order of the scenario catalogue and its variants, whatever order the runs happened in.
  const order = (report: BenchReport) => {
    const names = Object.keys(SCENARIOS);
    const scenario = names.indexOf(report.scenario);
    const variant = SCENARIOS[report.scenario]?.runs.findIndex((run) => run.variant === report.variant) ?? 0;
    return (scenario < 0 ? names.length : scenario) * 100 + Math.max(0, variant);
  };
  const reports = [...latest.values()].map((entry) => entry.report).sort((a, b) => order(a) - order(b));
  for (const report of reports) {
    const chart = `${report.scenario}${report.variant === report.scenario ? '' : `-${slug(report.variant)}`}.svg`;
    // Drawn again from report.json rather than copied, so every chart in docs has the current layout.
    fs.writeFileSync(path.join(docs, chart), renderChart(report));
    const machine = report.machine;
    process.stdout.write(
      `\n### ${report.scenario} — ${report.variant}\n\n` +
        `Run ${report.startedAt.slice(0, 16).replace('T', ' ')} UTC on ${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGiB} GiB, ` +
        `Node ${machine.node}, ${machine.os}${machine.openFilesLimit ? `, ${machine.openFilesLimit} open files` : ''}; Troupe from ${report.settings.runtime ?? 'an external process'}.\n\n` +
        `\`\`\`\n${report.command}\n\`\`\`\n\n\`\`\`\n${formatReportTable(report)}\n\`\`\`\n\n![${report.scenario} — ${report.variant}](bench/${chart})\n`,
    );
    const runs = byScenario.get(report.scenario) ?? [];
    runs.push(report);
    byScenario.set(report.scenario, runs);
  }
  for (const [scenario, reports] of byScenario) {
    if (reports.length > 1)
      process.stdout.write(
        `\n### ${scenario}: side by side\n\n\`\`\`\n${formatComparison(reports)}\n\`\`\`\n`,
      );
  }
}

main();

import {
  cpuFigures,
  cpuGoals,
  formatCpuReport,
  type CpuMeasurement,
  type CpuReport,
} from '../../scripts/bench/cpu-report';

// The cpu scenario's arithmetic and table: pure, no servers.

const measurement = (
  label: string,
  cpuSeconds: number,
  calls: number,
  completed = calls,
): CpuMeasurement => ({
  label,
  cpuSeconds,
  calls,
  completed,
  failed: 0,
  windowS: 20,
  clients: 50,
  meanLatencyMs: 400,
});

describe('cpu report', () => {
  test('CPU per call and per request, requests per second and per core', () => {
    const figures = cpuFigures(measurement('multi', 10, 2000, 400));
    expect(figures.cpuMsPerCall).toBe(5);
    expect(figures.cpuMsPerRequest).toBe(25);
    expect(figures.callsPerRequest).toBe(5);
    expect(figures.requestsPerS).toBe(20);
    expect(figures.requestsPerCoreS).toBe(40);
  });

  test('goals: one-call against Portkey non-streamed (≤ 1×), multi-agent against streamed (≤ 1.25×), and both against the cheaper', () => {
    const figures = {
      troupeOneCall: cpuFigures(measurement('one', 2, 1000)), // 2 ms per call
      troupeMultiAgent: cpuFigures(measurement('multi', 3, 1000)), // 3 ms
      portkeyJson: cpuFigures(measurement('pk json', 2.5, 1000)), // 2.5 ms
      portkeyStreamed: cpuFigures(measurement('pk stream', 2.6, 1000)), // 2.6 ms
    };
    const goals = cpuGoals(figures);
    expect(goals.map((goal) => [goal.name, +goal.ratio.toFixed(3), goal.pass])).toEqual([
      ['one-call chat', 0.8, true],
      ['multi-agent chat', 1.154, true],
      ['one-call chat', 0.8, true],
      ['multi-agent chat', 1.2, true],
    ]);
    const report: CpuReport = {
      scenario: 'cpu',
      startedAt: '2026-12-01T00:00:00.000Z',
      command: 'npm run bench -- --scenario cpu',
      commit: 'abc1234',
      machine: 'test',
      settings: {
        clients: 50,
        warmupS: 5,
        windowS: 20,
        rounds: 4,
        sim: { latencyMs: 100, tps: 300, rpm: 1e7, concurrency: 1e5 },
        runtime: 'tsx',
      },
      ...figures,
      goals,
    };
    const table = formatCpuReport(report);
    expect(table).toContain('PASS one-call chat');
    expect(table).toContain('0.80×');
    expect(table).toContain('Troupe chats per second per core: one-call 500');
    expect(table).toMatch(/^one\s+2\.00\s+2\.00/m);
  });

  test('no calls measured: no ratio, and the goal is not met', () => {
    const empty = cpuFigures(measurement('none', 1, 0));
    const some = cpuFigures(measurement('some', 1, 100));
    const goals = cpuGoals({
      troupeOneCall: empty,
      troupeMultiAgent: some,
      portkeyJson: some,
      portkeyStreamed: some,
    });
    expect(goals[0].pass).toBe(false);
  });
});

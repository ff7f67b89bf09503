import { spawnSync } from 'node:child_process';
import { applyHeapGrowth } from '../api/heap-growth';

describe('applyHeapGrowth', () => {
  test('sets V8 heap growing percent once, and nothing for 0 (V8 decides)', () => {
    const set: string[] = [];
    expect(applyHeapGrowth(50, (flags) => set.push(flags))).toBe(true);
    expect(applyHeapGrowth(0, (flags) => set.push(flags))).toBe(false);
    expect(set).toEqual(['--heap-growing-percent=50']);
  });

  test('set at run time, it is what V8 uses at its next full GCs: more of them, a lower peak', () => {
    // The same allocation pattern in two fresh processes: live data growing, garbage promoted.
    const script = `
      const v8 = require('node:v8');
      if (process.argv[1] !== '0') v8.setFlagsFromString('--heap-growing-percent=' + process.argv[1]);
      let fullGcs = 0;
      new (require('node:perf_hooks').PerformanceObserver)((list) => {
        for (const entry of list.getEntries()) if (entry.detail.kind === 4) fullGcs++;
      }).observe({ entryTypes: ['gc'] });
      const keep = [];
      for (let round = 0; round < 200; round++) {
        for (let i = 0; i < 5000; i++) keep.push({ round, i });
        const junk = [];
        for (let i = 0; i < 20000; i++) junk.push({ i });
        globalThis.junk = round % 3 ? junk : null;
      }
      setTimeout(() => process.stdout.write(String(fullGcs)), 50);
    `;
    const fullGcs = (percent: number) =>
      Number(spawnSync(process.execPath, ['-e', script, String(percent)], { encoding: 'utf8' }).stdout);
    expect(fullGcs(20)).toBeGreaterThan(fullGcs(0));
  });
});

import os from 'node:os';
import { ConfigError } from './index';

/**
 * `--workers N` (or `--workers=N`, `--workers max`) from the command line: how many Troupe
 * processes `npm start` runs through node:cluster. 1 (the default) is one process, as without it.
 */
export function parseWorkers(argv: readonly string[]): number {
  let raw: string | undefined;
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index];
    if (arg === '--workers') raw = argv[index + 1] ?? '';
    else if (arg.startsWith('--workers=')) raw = arg.slice('--workers='.length);
  }
  if (raw === undefined) return 1;
  if (raw === 'max') return os.availableParallelism();
  if (!/^\d{1,3}$/.test(raw) || Number(raw) < 1) {
    throw new ConfigError(
      `Invalid command line: --workers ${JSON.stringify(raw)} — expected an integer from 1 to 999, or max`,
    );
  }
  return Number(raw);
}

import os from 'node:os';
import { ConfigError } from '../../config';
import { parseWorkers } from '../../config/cli-args';

describe('--workers', () => {
  test('absent is one process; N, --workers=N and max are read', () => {
    expect(parseWorkers([])).toBe(1);
    expect(parseWorkers(['--workers', '3'])).toBe(3);
    expect(parseWorkers(['--workers=4'])).toBe(4);
    expect(parseWorkers(['--workers', 'max'])).toBe(os.availableParallelism());
  });

  test('a bad value is one ConfigError line naming the flag', () => {
    for (const bad of [['--workers'], ['--workers', '0'], ['--workers', 'two'], ['--workers=-1']]) {
      expect(() => parseWorkers(bad)).toThrow(ConfigError);
    }
    expect(() => parseWorkers(['--workers', 'two'])).toThrow(
      /--workers "two" — expected an integer from 1 to 999, or max/,
    );
  });
});

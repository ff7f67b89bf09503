import { SIM_SERVER_DEFAULTS } from './sim-server';
import type { SimServerOptions } from './sim-server';

/** A bad command-line flag; the message is the one line sim-llm prints before exiting with 2. */
export class SimArgumentError extends Error {
  readonly code = 'invalid_argument';
  constructor(message: string) {
    super(message);
    this.name = 'SimArgumentError';
  }
}

const FLAGS: Record<string, { key: keyof typeof SIM_SERVER_DEFAULTS; min: number; max: number }> = {
  '--port': { key: 'port', min: 0, max: 65_535 },
  '--rpm': { key: 'rpm', min: 1, max: 10_000_000 },
  '--concurrency': { key: 'concurrency', min: 1, max: 1_000_000 },
  '--latency-ms': { key: 'latencyMs', min: 0, max: 600_000 },
  '--tps': { key: 'tps', min: 1, max: 1_000_000 },
  // Fault injection (sim-faults.ts).
  '--fail-percent': { key: 'failPercent', min: 0, max: 100 },
  '--cut-after-chunks': { key: 'cutAfterChunks', min: 0, max: 1_000_000 },
  '--first-byte-delay-ms': { key: 'firstByteDelayMs', min: 0, max: 600_000 },
  '--hang-percent': { key: 'hangPercent', min: 0, max: 100 },
  '--storm-429-percent': { key: 'storm429Percent', min: 0, max: 100 },
  '--retry-after-s': { key: 'retryAfterSeconds', min: 0, max: 3600 },
  '--seed': { key: 'seed', min: 0, max: 4_294_967_295 },
};

export const SIM_USAGE =
  'usage: npm run sim-llm -- [--port 8081] [--host 127.0.0.1] [--rpm 600] [--concurrency 20] [--latency-ms 800] [--tps 40]\n' +
  '  thinking model: [--thinking on|off] (reasoning_content before every answer; else on request)\n' +
  '  faults: [--fail-percent 0-100] [--cut-after-chunks N] [--first-byte-delay-ms MS] [--hang-percent 0-100]\n' +
  '          [--storm-429-percent 0-100] [--retry-after-s S] [--seed N]';

/** sim-llm's flags (`--name value` or `--name=value`); throws SimArgumentError naming the bad one. */
export function parseSimServerArgs(argv: string[]): SimServerOptions & { help?: boolean } {
  const options: SimServerOptions & { help?: boolean } = {};
  for (let index = 0; index < argv.length; index++) {
    const argument = argv[index];
    if (argument === '--help' || argument === '-h') {
      options.help = true;
      continue;
    }
    const [flag, inline] = argument.includes('=')
      ? [argument.slice(0, argument.indexOf('=')), argument.slice(argument.indexOf('=') + 1)]
      : [argument, undefined];
    if (flag !== '--host' && flag !== '--thinking' && !(flag in FLAGS))
      throw new SimArgumentError(`unknown flag ${JSON.stringify(argument)}; ${SIM_USAGE}`);
    const value = inline ?? argv[++index];
    if (value === undefined || value === '') throw new SimArgumentError(`${flag} needs a value`);
    if (flag === '--host') {
      options.host = value;
      continue;
    }
    if (flag === '--thinking') {
      if (value !== 'on' && value !== 'off')
        throw new SimArgumentError(`--thinking=${JSON.stringify(value)} — expected on or off`);
      options.thinking = value === 'on';
      continue;
    }
    const { key, min, max } = FLAGS[flag];
    const number = /^\d+$/.test(value) ? Number(value) : NaN;
    if (!Number.isSafeInteger(number) || number < min || number > max) {
      throw new SimArgumentError(
        `${flag}=${JSON.stringify(value)} — expected an integer from ${min} to ${max}`,
      );
    }
    options[key] = number as never;
  }
  return options;
}

import { parseArgs } from 'node:util';
import { runCacheScenario } from './cache-scenario';
import { runDeployScenario } from './deploy-scenario';
import { runEndpointsScenario } from './endpoints-scenario';
import { runGatewayScenario } from './gateway-scenario';
import { runParallelScenario } from './parallel-scenario';
import type { TroupeRuntime } from './server-processes';

/** The scenarios that compare Troupe settings (issue 11), each with its own flags and report. */
export const FOCUSED_SCENARIOS = ['cache', 'parallel', 'endpoints', 'deploy', 'gateway'] as const;

/**
 * Runs `--scenario cache|parallel` and returns true; returns false for any other scenario (the
 * load benchmark's own options parser handles those).
 */
export async function runFocusedScenario(argv: string[]): Promise<boolean> {
  const { values } = parseArgs({
    args: argv,
    strict: false,
    options: {
      scenario: { type: 'string' },
      users: { type: 'string' },
      'questions-per-user': { type: 'string' },
      'ramp-s': { type: 'string' },
      'think-s': { type: 'string' },
      'idle-chats': { type: 'string' },
      'overload-s': { type: 'string' },
      part: { type: 'string' },
      seed: { type: 'string' },
      'duration-s': { type: 'string' },
      rate: { type: 'string' },
      runtime: { type: 'string' },
      out: { type: 'string' },
      quick: { type: 'boolean' },
    },
  });
  const scenario = values.scenario;
  if (typeof scenario !== 'string' || !(FOCUSED_SCENARIOS as readonly string[]).includes(scenario))
    return false;
  const number = (name: string, fallback: number) => {
    const value = values[name];
    if (value === undefined) return fallback;
    const parsed = Number(value);
    if (!Number.isFinite(parsed) || parsed < 0) throw new Error(`--${name} must be a non-negative number`);
    return parsed;
  };
  const runtime = (values.runtime ?? 'tsx') as TroupeRuntime;
  const outDir = typeof values.out === 'string' ? values.out : 'bench-results';
  const seed = number('seed', 11);
  if (scenario === 'gateway') {
    await runGatewayScenario({
      quick: values.quick === true,
      durationS: values['duration-s'] === undefined ? undefined : number('duration-s', 60),
      seed,
      runtime,
      outDir,
    });
  } else if (scenario === 'endpoints') {
    await runEndpointsScenario({
      durationS: number('duration-s', 60),
      rate: number('rate', 0.8),
      seed,
      runtime,
      outDir,
    });
  } else if (scenario === 'deploy') {
    // Durable chats (issue 26): a rolling restart and a SIGKILL under steady load.
    await runDeployScenario({
      users: number('users', 30),
      durationS: number('duration-s', 40),
      runtime,
      outDir,
    });
  } else if (scenario === 'cache') {
    await runCacheScenario({
      users: number('users', 300),
      questionsPerUser: number('questions-per-user', 3),
      rampS: number('ramp-s', 30),
      thinkS: number('think-s', 10),
      seed,
      runtime,
      outDir,
    });
  } else {
    const part = values.part === 'idle' || values.part === 'overload' ? values.part : undefined;
    await runParallelScenario({
      part,
      idleChats: number('idle-chats', 12),
      overloadS: number('overload-s', 60),
      seed,
      runtime,
      outDir,
    });
  }
  return true;
}

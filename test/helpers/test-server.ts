import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { testConfig } from '../../config';
import { startTroupe, type Troupe, type TroupeOverrides } from '../../api/troupe';

export interface TestTroupe extends Troupe {
  dataDir: string;
  /** Closes the server and removes its data directory. */
  stop(): Promise<void>;
}

/**
 * A real Troupe on a free loopback port with a fast simulated model and its own data directory.
 * `env` overrides any setting, as the environment would.
 */
export async function startTestTroupe(
  env: Record<string, string> = {},
  overrides: TroupeOverrides = {},
): Promise<TestTroupe> {
  const dataDir = env.DATA_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-test-'));
  const config = testConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    SIM_LATENCY_MS: '5',
    SIM_TOKENS_PER_S: '5000',
    // Tests stop servers with chats still running; draining them would only slow the suite down.
    SHUTDOWN_GRACE_MS: '0',
    ...env,
  });
  const troupe = await startTroupe(config, { warmUp: false, ...overrides });
  return {
    ...troupe,
    dataDir,
    async stop() {
      await troupe.close();
      if (!env.DATA_DIR) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

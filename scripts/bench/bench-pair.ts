import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { getJson, postJson, type SimStats } from './resource-sampler';
import {
  REPO_ROOT,
  startSimServer,
  startTroupeServer,
  troupeEnvAgainstSim,
  type ChildServer,
  type SimQuota,
  type TroupeRuntime,
} from './server-processes';

/**
 * sim-llm and a Troupe pointed at it, for the focused scenarios (cache, parallel) that compare a
 * few Troupe settings on the same quota; each pair runs in child processes of its own.
 */
export interface BenchPair {
  troupeUrl: string;
  simUrl: string;
  agent: http.Agent;
  simStats(): Promise<SimStats>;
  resetSim(): Promise<void>;
  stop(): Promise<void>;
}

export async function startBenchPair(
  quota: SimQuota,
  troupeEnv: Record<string, string>,
  options: { runtime: TroupeRuntime; directory: string; label: string },
): Promise<BenchPair> {
  fs.mkdirSync(options.directory, { recursive: true });
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-bench-'));
  const sim: ChildServer = await startSimServer(
    quota,
    path.join(options.directory, `${options.label}-sim-llm.log`),
  );
  let troupe: ChildServer;
  try {
    troupe = await startTroupeServer(
      {
        ...troupeEnvAgainstSim(sim.url, dataDir),
        // Troupe's limits at the quota: the scheduler, not the provider, holds calls back.
        LLM_MAX_CONCURRENT: String(quota.concurrency),
        LLM_MAX_RPM: String(quota.rpm),
        ...troupeEnv,
      },
      options.runtime,
      path.join(options.directory, `${options.label}-troupe.log`),
    );
  } catch (error) {
    await sim.stop();
    throw error;
  }
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2000 });
  return {
    troupeUrl: troupe.url,
    simUrl: sim.url,
    agent,
    async simStats() {
      const stats = await getJson<SimStats>(`${sim.url}/sim/stats`);
      if (!stats) throw new Error('sim-llm did not answer /sim/stats');
      return stats;
    },
    async resetSim() {
      await postJson(`${sim.url}/sim/reset`);
    },
    async stop() {
      agent.destroy();
      await troupe.stop();
      await sim.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export function resultsDirectory(outDir: string, name: string): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  return path.resolve(REPO_ROOT, outDir, `${stamp}-${name}`);
}

export const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

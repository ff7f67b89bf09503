import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { runDurableChat, type DurableChatRecord } from './durable-client';
import { findNginx, startNginx, type RunningNginx } from './nginx-process';
import {
  startSimServer,
  startTroupeServer,
  troupeEnvAgainstSim,
  type ChildServer,
  type SimQuota,
  type TroupeRuntime,
} from './server-processes';
import { percentile } from './statistics';

export interface DeployScenarioOptions {
  /** Concurrent users, each sending chats one after another until the load ends. */
  users: number;
  /** How long users keep sending new chats, s (the faults happen inside it). */
  durationS: number;
  runtime: TroupeRuntime;
  outDir: string;
}

/** The provider: a quota the load fits in (the benchmark is about restarts, not overload). */
const QUOTA: SimQuota = { rpm: 900, concurrency: 40, latencyMs: 150, tps: 40 };
const BENCH_REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

/**
 * `npm run bench -- --scenario deploy`: 3 Troupe instances behind the real nginx
 * (deploy/nginx/troupe.conf) sharing Redis and one quota-enforcing sim-llm, under steady load; a
 * rolling restart (SIGTERM each instance in turn, wait for it to exit, start it again), then a
 * SIGKILL of one instance mid-chat (restarted 2 s later, as a supervisor would). Clients reconnect
 * with Last-Event-ID as docs/DURABLE-CHATS.md says. Prints chats failed, chats that needed a
 * reconnect, duplicate calls made by adoption, the extra latency of adopted chats, provider 429s.
 */
export async function runDeployScenario(options: DeployScenarioOptions): Promise<void> {
  const nginxBinary = findNginx();
  if (!nginxBinary) throw new Error('the deploy scenario needs nginx: apt-get install -y nginx');
  const directory = path.resolve(options.outDir, `deploy-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  fs.mkdirSync(directory, { recursive: true });
  const prefix = `troupe-bench-deploy-${randomBytes(4).toString('hex')}:`;
  const say = (line: string) =>
    process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(1)} s] ${line}\n`);
  let t0 = Date.now();
  const sim = await startSimServer(QUOTA, path.join(directory, 'sim-llm.log'));
  const instances: ChildServer[] = [];
  const logs: string[] = [];
  let nginx: RunningNginx | undefined;
  const envFor = (index: number, port: number) => ({
    ...troupeEnvAgainstSim(sim.url, path.join(directory, `data-${index}`)),
    PORT: String(port),
    REDIS_URL: BENCH_REDIS_URL,
    REDIS_KEY_PREFIX: prefix,
    LLM_MAX_RPM: String(QUOTA.rpm),
    LLM_MAX_CONCURRENT: String(QUOTA.concurrency),
  });
  let generation = 0;
  const start = async (index: number, port: number) => {
    const logFile = path.join(directory, `troupe-${index}-${generation++}.log`);
    logs.push(logFile);
    fs.mkdirSync(path.join(directory, `data-${index}`), { recursive: true });
    instances[index] = await startTroupeServer(envFor(index, port), options.runtime, logFile);
  };
  const portOf = (index: number) => Number(new URL(instances[index].url).port);
  const records: DurableChatRecord[] = [];
  let killedAt = Infinity;
  try {
    for (let index = 0; index < 3; index++) await start(index, 0);
    nginx = await startNginx(
      nginxBinary,
      instances.map((instance) => new URL(instance.url).host),
    );
    // The instances learn of each other from their heartbeats (every 2 s).
    await new Promise((resolve) => setTimeout(resolve, 2500));
    await fetch(`${sim.url}/sim/reset`, { method: 'POST' }).catch(() => undefined);
    t0 = Date.now();
    const loadEndsAt = t0 + options.durationS * 1000;
    let sent = 0;
    const user = async (index: number) => {
      await new Promise((resolve) => setTimeout(resolve, (index / options.users) * 3000));
      while (Date.now() < loadEndsAt) {
        const message = `Plan question ${sent++} from user ${index}: compare two ways to learn a language`;
        records.push(await runDurableChat(nginx!.url, message, `deploy-user-${index}`));
      }
    };
    const load = Promise.all(Array.from({ length: options.users }, (_, index) => user(index)));
    // The faults, in the middle of the load.
    await new Promise((resolve) => setTimeout(resolve, options.durationS * 150));
    say('rolling restart begins');
    for (let index = 0; index < 3; index++) {
      const port = portOf(index);
      await instances[index].stop(30_000);
      say(`instance ${index} drained and exited; starting it again`);
      await start(index, port);
    }
    say('rolling restart done');
    await new Promise((resolve) => setTimeout(resolve, 4000));
    const victim = 1;
    process.kill(instances[victim].pid, 'SIGKILL');
    killedAt = Date.now();
    say(`instance ${victim} SIGKILLed mid-chat`);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    await start(victim, portOf(victim));
    say(`instance ${victim} started again`);
    await load;
    say('load over');
  } finally {
    if (nginx) fs.writeFileSync(path.join(directory, 'nginx.log'), nginx.stderr());
    await nginx?.stop();
    await Promise.all(instances.map((instance) => instance.stop()));
    const stats = (await fetch(`${sim.url}/sim/stats`)
      .then((response) => response.json())
      .catch(() => ({}))) as { requests?: number; rejected429?: number };
    await sim.stop();
    await deletePrefix(prefix);
    report(records, stats, logs, directory, options, killedAt);
  }
}

function report(
  records: DurableChatRecord[],
  stats: { requests?: number; rejected429?: number },
  logs: string[],
  directory: string,
  options: DeployScenarioOptions,
  killedAt: number,
): void {
  const adoptions = logs.flatMap((file) =>
    fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) => line.includes('continuing a chat whose instance is gone')),
  );
  const madeAgain = adoptions.filter((line) => line.includes('"stepMadeAgain":true')).length;
  const failed = records.filter((record) => record.outcome !== 'done');
  const reconnected = records.filter((record) => record.reconnects > 0);
  const plain = records.filter((record) => record.reconnects === 0 && record.outcome === 'done');
  // Reconnected after the SIGKILL: adopted once the dead instance's presence lapsed. Before it:
  // handed over by a draining instance at an agent step.
  const afterKill = reconnected.filter((record) => record.reconnectedAt.some((at) => at >= killedAt));
  const afterDrain = reconnected.filter((record) => !afterKill.includes(record));
  const duration = (list: DurableChatRecord[]) => list.map((record) => record.endedAt - record.sentAt);
  const p50 = (list: DurableChatRecord[]) => percentile(duration(list), 50);
  const codes = new Map<string, number>();
  for (const record of failed) codes.set(record.code ?? '?', (codes.get(record.code ?? '?') ?? 0) + 1);
  const figures = {
    users: options.users,
    durationS: options.durationS,
    chats: records.length,
    failed: failed.length,
    failedBy: Object.fromEntries(codes),
    refusedBeforeStart: records.reduce((sum, record) => sum + record.refusals, 0),
    neededReconnect: reconnected.length,
    adoptions: adoptions.length,
    duplicateCallsByAdoption: madeAgain,
    restartedAgentsShown: records.reduce((sum, record) => sum + record.restartedAgents, 0),
    brokenEventIds: records.filter((record) => record.idsBroken).length,
    p50PlainMs: Math.round(p50(plain) ?? 0),
    p50ReconnectedMs: Math.round(p50(reconnected) ?? 0),
    handedOverOnDrain: afterDrain.length,
    p50HandedOverMs: Math.round(p50(afterDrain) ?? 0),
    adoptedAfterKill: afterKill.length,
    p50AdoptedAfterKillMs: Math.round(p50(afterKill) ?? 0),
    providerRequests: stats.requests,
    provider429s: stats.rejected429,
  };
  fs.writeFileSync(path.join(directory, 'deploy.json'), JSON.stringify({ figures, records }, null, 2));
  const lines = [
    '',
    `deploy: ${figures.users} users for ${figures.durationS} s, 3 instances behind nginx, rolling restart + one SIGKILL`,
    `  chats                         ${figures.chats}`,
    `  chats failed                  ${figures.failed}   (want 0)${failed.length ? ` ${JSON.stringify(figures.failedBy)}` : ''}`,
    `  503s retried by the client    ${figures.refusedBeforeStart}   (nginx retries them first)`,
    `  chats that needed a reconnect ${figures.neededReconnect}`,
    `  adoptions                     ${figures.adoptions}   (hand-overs on drain and the killed instance's chats)`,
    `  duplicate calls by adoption   ${figures.duplicateCallsByAdoption}   (a step in flight made again)`,
    `  agents shown again            ${figures.restartedAgentsShown}   broken event ids ${figures.brokenEventIds}   (want 0, 0)`,
    `  p50 chat time                 ${figures.p50PlainMs} ms without a reconnect, ${figures.p50ReconnectedMs} ms with one`,
    `    handed over on a drain      ${figures.handedOverOnDrain} chats, p50 ${figures.p50HandedOverMs} ms`,
    `    adopted after the SIGKILL   ${figures.adoptedAfterKill} chats, p50 ${figures.p50AdoptedAfterKillMs} ms`,
    `  provider requests / 429s      ${figures.providerRequests} / ${figures.provider429s}   (want 0 429s)`,
    `  results in ${directory}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function deletePrefix(prefix: string): Promise<void> {
  const redis = new Redis(BENCH_REDIS_URL, { maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

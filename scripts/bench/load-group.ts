import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { now, type ChatRecord } from './chat-client';
import { startLoad, zeroCounters, type LoadCounters, type LoadPlan } from './load-driver';

/**
 * The load generator as one object, whether it runs in this process or is split over worker
 * processes. Splitting keeps each process well under the open-files limit (20,000 here) and
 * its event loop responsive when thousands of streams are open.
 */

export interface LoadGroup {
  /** Absolute epoch ms at which arrivals start (just after every worker is ready). */
  startAt: number;
  counters(): LoadCounters;
  /** CPU seconds used by the generator so far (this process and its workers). */
  cpuSeconds(): number;
  finished: Promise<ChatRecord[]>;
  stopArrivals(): void;
  releaseAll(): void;
}

/** Messages between the main process and a load worker (load-worker.ts). */
export type ToWorker = { type: 'start'; plan: LoadPlan } | { type: 'stop' } | { type: 'release' };
export type FromWorker =
  | { type: 'ready' }
  | { type: 'progress'; counters: LoadCounters; cpuSeconds: number }
  | { type: 'records'; records: ChatRecord[] }
  | { type: 'done'; cpuSeconds: number };

const processCpuSeconds = () => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
};

/** Splits `plan` into `workers` shares (users, or the arrival rate) and starts them together. */
export async function startLoadGroup(
  unstarted: Omit<LoadPlan, 'startAt'>,
  workers: number,
): Promise<LoadGroup> {
  const cpuAtStart = processCpuSeconds();
  if (workers <= 1) {
    const plan = { ...unstarted, startAt: now() + 200 };
    const driver = startLoad(plan);
    return {
      startAt: plan.startAt,
      counters: () => driver.counters,
      cpuSeconds: () => processCpuSeconds() - cpuAtStart,
      finished: driver.finished.then(() => driver.records),
      stopArrivals: () => driver.stopArrivals(),
      releaseAll: () => driver.releaseAll(),
    };
  }
  const children = await Promise.all(Array.from({ length: workers }, () => spawnWorker()));
  // Every worker is up: the shared start is set now, so none of them begins late.
  const plan = { ...unstarted, startAt: now() + 500 };
  const shares = splitPlan(plan, workers);
  const counters = shares.map(() => zeroCounters());
  const cpu = shares.map(() => 0);
  const records: ChatRecord[] = [];
  const finished = Promise.all(
    children.map(
      (child, index) =>
        new Promise<void>((resolve) => {
          child.on('message', (message: FromWorker) => {
            if (message.type === 'progress') {
              counters[index] = message.counters;
              cpu[index] = message.cpuSeconds;
            } else if (message.type === 'records') {
              for (const record of message.records) records.push(record);
            } else if (message.type === 'done') {
              cpu[index] = message.cpuSeconds;
              resolve();
            }
          });
          child.once('exit', () => resolve());
          child.send({ type: 'start', plan: shares[index] } satisfies ToWorker);
        }),
    ),
  ).then(() => records);
  const broadcast = (message: ToWorker) => {
    for (const child of children) if (child.connected) child.send(message);
  };
  return {
    startAt: plan.startAt,
    counters: () => {
      const total = zeroCounters();
      for (const share of counters)
        for (const key of Object.keys(total) as Array<keyof LoadCounters>) total[key] += share[key];
      return total;
    },
    cpuSeconds: () => processCpuSeconds() - cpuAtStart + cpu.reduce((sum, value) => sum + value, 0),
    finished,
    stopArrivals: () => broadcast({ type: 'stop' }),
    releaseAll: () => broadcast({ type: 'release' }),
  };
}

/** Shares of a plan: users split as evenly as possible with distinct offsets and seeds; open arrival rates divided. */
export function splitPlan(plan: LoadPlan, workers: number): LoadPlan[] {
  const shares: LoadPlan[] = [];
  let offset = plan.userOffset;
  for (let index = 0; index < workers; index++) {
    const users = Math.floor(plan.users / workers) + (index < plan.users % workers ? 1 : 0);
    shares.push({
      ...plan,
      users,
      // Open arrivals get user ids far apart so that shares never collide.
      userOffset: plan.arrival === 'open' ? plan.userOffset + index * 10_000_000 : offset,
      arrivalRatePerS: plan.arrivalRatePerS / workers,
      maxOpen: Math.ceil(plan.maxOpen / workers),
      seed: plan.seed + index * 7919,
    });
    offset += users;
  }
  return shares;
}

function spawnWorker(): Promise<ChildProcess> {
  // Run through tsx (npm run bench) or compiled (dist/scripts/bench): the worker sits beside this file either way.
  const typescript = path.extname(__filename) === '.ts';
  const child = fork(path.join(__dirname, `load-worker${path.extname(__filename)}`), [], {
    execArgv: typescript ? ['--import', 'tsx'] : [],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('message', (message: FromWorker) => {
      if (message.type === 'ready') resolve(child);
    });
  });
}

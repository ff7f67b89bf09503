import { expectedCallsPerChat, type MessageMix } from './chat-messages';
import type { ProviderQuota, RunSpec, Scenario } from './scenarios';
import { ARRIVALS, selectWorkloads, workloadLabel, type MatrixSelection } from './matrix-selection';
import { chatCapacityPerSecond, quotaBound, seededRandom } from './statistics';

/**
 * The `matrix` scenario: workloads generated from a seed (mulberry32, statistics.ts), so that one
 * number reproduces a whole run. Every workload runs on a cold server and is replayed with
 * admission off (false refusals). What varies, and how it is covered:
 * - arrivals: burst (all at once), ramp (the rate rising linearly to its peak) and open (Poisson);
 * - the quota's binding term: R/60 (RPM) or C/L (concurrency), the other one twice as wide;
 * - instances: 1, or 3 behind nginx sharing Redis (the `cluster` scenario's set-up);
 * - the provider call's time L (first token + streaming): 0.1–4 s, log-spaced;
 * - the chats' cost: 4–9 provider calls, from the share of chats that search (0–100 %), the share
 *   whose plan the Critic sends back once, and AGENT_PARALLEL (a withdrawn Reporter draft per revision);
 * - demand: 0.3–3× the quota's chat capacity min(R/60, C/L) / k, log-spaced, within each arrival shape.
 * The discrete dimensions are a full factorial (3 arrivals × 2 bindings, 3 instances in a quarter of
 * it); the continuous ones are evenly spaced levels dealt out by a seeded shuffle (a Latin
 * hypercube), so every range is covered end to end whatever the seed.
 */

export type MatrixArrival = 'burst' | 'ramp' | 'open';

export interface MatrixWorkload {
  /** w01, w02…: stable for a seed (`--only w07`). */
  id: string;
  /** Seed of this workload's users and messages (derived from the matrix seed). */
  loadSeed: number;
  /** Run this many times faster than real time (applyScale); every other figure here is unscaled. */
  scale: number;
  arrival: MatrixArrival;
  /** The quota term that sets the bound (nominally). */
  binding: 'rpm' | 'concurrency';
  instances: 1 | 3;
  /** Nominal time of one provider call: first token, then 75 chunks, ms. */
  callMs: number;
  quota: ProviderQuota;
  /** Share of chats that search the web, and share whose plan is revised once. */
  searchShare: number;
  reviseShare: number;
  /** AGENT_PARALLEL=on: the Reporter drafts during each review (one call more per revision). */
  agentParallel: boolean;
  mix: MessageMix;
  /** Nominal provider calls per chat (k). */
  callsPerChat: number;
  /** min(R/60, C/L), calls/s. */
  boundCallsPerS: number;
  /** The bound / k: chats per second the quota completes. */
  capacityChatsPerS: number;
  /**
   * Demand / capacity. open: the arrival rate; ramp: the rate at the ramp's peak (the end); burst:
   * the chats ÷ what the quota completes before the chat deadline (capacity × (deadline − k·L)).
   */
  load: number;
  /** Chats that arrive (burst, ramp: exactly; open: on average). */
  chats: number;
  /** Wall-clock seconds over which they arrive (burst: 0). */
  arrivalS: number;
  /** open: arrivals per second, unscaled (× scale as run). */
  arrivalRatePerS?: number;
}

export interface MatrixOptions {
  /** Workloads to generate (at least 24 by default; a multiple of 6 covers the factorial evenly). */
  count?: number;
  /** The chat deadline the burst is sized against, unscaled s (CHAT_TIMEOUT_MS, 60 s by default). */
  deadlineS?: number;
  /**
   * The runs' scale (scenarios.ts applyScale): calls, deadline and timeouts ÷ scale, RPM and arrival
   * rates × scale. The matrix's own figures (L, R, rates, capacity) are unscaled; arrival windows
   * are wall-clock seconds, so a scale of 2 brings twice the chats per second of window.
   */
  scale?: number;
}

/** The matrix runs twice as fast as real time by default: 60 s deadlines that take 30 s. */
export const MATRIX_DEFAULT_SCALE = 2;

export const MATRIX_DEFAULT_COUNT = 24;
export const MATRIX_RANGES = {
  callMs: [100, 4000],
  load: [0.3, 3],
  boundCallsPerS: [3, 15],
  /** Wall-clock seconds of arrivals (ramp, open). */
  arrivalS: [10, 16],
  /** Arrival windows are stretched up to this so that light workloads still bring some chats. */
  maxArrivalS: 30,
  minChats: 12,
  maxBurstChats: 400,
} as const;

const BINDINGS: Array<MatrixWorkload['binding']> = ['rpm', 'concurrency'];

/** The workloads of `seed`: the same seed gives the same list, parameter for parameter. */
export function generateMatrix(seed: number, options: MatrixOptions = {}): MatrixWorkload[] {
  const count = Math.max(6, Math.floor(options.count ?? MATRIX_DEFAULT_COUNT));
  const deadlineS = options.deadlineS ?? 60;
  const scale = options.scale ?? MATRIX_DEFAULT_SCALE;
  const random = seededRandom(seed * 2_654_435_761 + 0x9e3779b9);
  const shuffled = <T>(items: T[]): T[] => {
    const copy = [...items];
    for (let index = copy.length - 1; index > 0; index--) {
      const other = Math.floor(random() * (index + 1));
      [copy[index], copy[other]] = [copy[other], copy[index]];
    }
    return copy;
  };
  // Evenly spaced levels from `low` to `high` (both ends included), dealt out in a seeded order.
  const levels = (n: number, low: number, high: number, log = false): number[] =>
    shuffled(
      Array.from({ length: n }, (_, index) => {
        const at = n === 1 ? 0.5 : index / (n - 1);
        return log ? low * (high / low) ** at : low + (high - low) * at;
      }),
    );

  // The factorial: arrival × binding, with one repetition in four on 3 instances; in a seeded
  // order, so that the first few workloads (--limit) are already varied.
  const cells = shuffled(
    Array.from({ length: count }, (_, index) => ({
      arrival: ARRIVALS[index % 3],
      binding: BINDINGS[Math.floor(index / 3) % 2],
      instances: (Math.floor(index / 6) % 4 === 3 ? 3 : 1) as 1 | 3,
    })),
  );
  // Fewer than 24: make sure a 3-instance cell is there all the same.
  if (!cells.some((cell) => cell.instances === 3)) cells[cells.length - 1].instances = 3;

  const callMs = levels(count, MATRIX_RANGES.callMs[0], MATRIX_RANGES.callMs[1], true);
  const bound = levels(count, MATRIX_RANGES.boundCallsPerS[0], MATRIX_RANGES.boundCallsPerS[1], true);
  const search = levels(count, 0, 1);
  const revise = levels(count, 0, 1);
  const parallel = shuffled(Array.from({ length: count }, (_, index) => index % 3 === 0));
  // The extremes of the calls per chat: no search and no revision (4 calls) somewhere, and every
  // chat searching, revised, with parallel drafts (9 calls) somewhere else.
  const swap = (values: number[], at: number, value: number) => {
    const from = values.indexOf(value);
    [values[at], values[from]] = [values[from], values[at]];
  };
  const allSearch = search.indexOf(1);
  swap(revise, allSearch, 1);
  parallel[allSearch] = true;
  const noSearch = search.indexOf(0);
  swap(revise, noSearch, 0);
  // Demand levels within each arrival shape: every shape sees 0.3× to 3×.
  const loads = new Array<number>(count);
  for (const arrival of ARRIVALS) {
    const indices = cells.flatMap((cell, index) => (cell.arrival === arrival ? [index] : []));
    const values = levels(indices.length, MATRIX_RANGES.load[0], MATRIX_RANGES.load[1], true);
    indices.forEach((index, position) => (loads[index] = values[position]));
  }

  return cells.map((cell, index) => {
    const searchShare = round(search[index], 2);
    const reviseShare = round(revise[index], 2);
    const agentParallel = parallel[index];
    const mix: MessageMix = {
      long: (1 - searchShare) * (1 - reviseShare),
      short: (1 - searchShare) * reviseShare,
      search: searchShare * (1 - reviseShare),
      search_review: searchShare * reviseShare,
    };
    const k = expectedCallsPerChat(mix, agentParallel);
    let load = loads[index];
    const horizonOf = (callMs: number) => Math.max(1, deadlineS - (k * callMs) / 1000);
    let workloadCallMs = Math.round(callMs[index]);
    let quota = quotaFor(cell.binding, bound[index], workloadCallMs);
    // A burst on a wide quota would be hundreds of chats: the quota is narrowed instead, so that
    // the burst keeps its load and stays under maxBurstChats. A concurrency-bound quota of short
    // calls cannot narrow below one slot: there the calls are made slower instead.
    for (let attempt = 0; cell.arrival === 'burst' && attempt < 8; attempt++) {
      const { mu, nominalCallMs } = figures(quota, k);
      const wanted = (load * mu * horizonOf(nominalCallMs)) / k;
      if (wanted <= MATRIX_RANGES.maxBurstChats) break;
      const narrowed = (MATRIX_RANGES.maxBurstChats * 0.98) / wanted;
      const narrower = quotaFor(cell.binding, mu * narrowed, workloadCallMs);
      if (narrower.concurrency === quota.concurrency && narrower.rpm === quota.rpm) {
        workloadCallMs = Math.round(workloadCallMs / narrowed);
        quota = quotaFor(cell.binding, mu * narrowed, workloadCallMs);
      } else quota = narrower;
    }
    const { mu, nominalCallMs, capacity } = figures(quota, k);
    let chats: number;
    let arrivalS: number;
    let arrivalRatePerS: number | undefined;
    if (cell.arrival === 'burst') {
      // What the quota completes before the deadline, the last chat's own k calls aside.
      const horizonS = horizonOf(nominalCallMs);
      chats = clamp(Math.round(load * capacity * horizonS), 5, MATRIX_RANGES.maxBurstChats);
      load = chats / (capacity * horizonS);
      arrivalS = 0;
    } else {
      // A ramp's mean rate is half its peak; chats per wall-clock second, as run.
      const meanRate = load * capacity * scale * (cell.arrival === 'ramp' ? 0.5 : 1);
      const drawn =
        MATRIX_RANGES.arrivalS[0] + random() * (MATRIX_RANGES.arrivalS[1] - MATRIX_RANGES.arrivalS[0]);
      arrivalS = Math.round(
        clamp(
          Math.max(drawn, MATRIX_RANGES.minChats / meanRate),
          MATRIX_RANGES.arrivalS[0],
          MATRIX_RANGES.maxArrivalS,
        ),
      );
      chats = Math.max(1, Math.round(meanRate * arrivalS));
      if (cell.arrival === 'open') arrivalRatePerS = load * capacity;
      else load = (2 * chats) / arrivalS / (capacity * scale);
    }
    return {
      id: `w${String(index + 1).padStart(2, '0')}`,
      scale,
      loadSeed: (seed * 1000 + index + 1) >>> 0,
      arrival: cell.arrival,
      binding: cell.binding,
      instances: cell.instances,
      callMs: Math.round(nominalCallMs),
      quota,
      searchShare,
      reviseShare,
      agentParallel,
      mix,
      callsPerChat: round(k, 2),
      boundCallsPerS: round(mu, 3),
      capacityChatsPerS: round(capacity, 4),
      load: round(load, 3),
      chats,
      arrivalS,
      ...(arrivalRatePerS !== undefined ? { arrivalRatePerS: round(arrivalRatePerS, 4) } : {}),
    };
  });
}

/** The nominal call time of a quota, its bound and its chat capacity at k calls per chat. */
function figures(quota: ProviderQuota, k: number): { nominalCallMs: number; mu: number; capacity: number } {
  const nominalCallMs = quota.latencyMs + (75 / quota.tps) * 1000;
  const bound = quotaBound(quota, nominalCallMs);
  return { nominalCallMs, mu: bound.mu, capacity: chatCapacityPerSecond(bound, k) };
}

/**
 * A quota whose `binding` term is `mu` calls/s and whose other term is at least twice that, with
 * calls of about `callMs` (30 % to the first token, then 75 chunks).
 */
function quotaFor(binding: MatrixWorkload['binding'], mu: number, callMs: number): ProviderQuota {
  const latencyMs = Math.round(callMs * 0.3);
  const tps = Math.max(1, Math.round(75 / ((callMs - latencyMs) / 1000)));
  const callS = (latencyMs + (75 / tps) * 1000) / 1000;
  if (binding === 'rpm') {
    return {
      rpm: Math.max(1, Math.round(mu * 60)),
      concurrency: Math.max(2, Math.ceil(2 * mu * callS)),
      latencyMs,
      tps,
    };
  }
  const concurrency = Math.max(1, Math.round(mu * callS));
  return { rpm: Math.ceil((2 * concurrency * 60) / callS), concurrency, latencyMs, tps };
}

const round = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits;
const clamp = (value: number, low: number, high: number) => Math.min(high, Math.max(low, value));

/** A workload as the benchmark runs it: cold, replayed with admission off, at the workload's scale. */
export function workloadRunSpec(workload: MatrixWorkload): RunSpec {
  return {
    variant: workloadLabel(workload),
    quota: workload.quota,
    arrival: workload.arrival,
    users: workload.arrival === 'open' ? 0 : workload.chats,
    arrivalRatePerS: workload.arrivalRatePerS ?? 0,
    overloadFactor: workload.load,
    thinkS: 0,
    rampS: workload.arrival === 'ramp' ? workload.arrivalS : 0,
    // A ramp's last user starts just before its end; arrivals stop a moment after.
    durationS: workload.arrival === 'burst' ? 1 : workload.arrivalS + (workload.arrival === 'ramp' ? 1 : 0),
    warmupS: 0,
    // Past the server's chat deadline (60 s): the deadline, not the client, ends a late chat.
    clientTimeoutS: 90,
    scale: workload.scale,
    troupeEnv: { AGENT_PARALLEL: workload.agentParallel ? 'on' : 'off' },
    workers: 1,
    ...(workload.instances > 1 ? { cluster: { instances: workload.instances } } : {}),
    coldStart: true,
    replay: true,
    mix: workload.mix,
    matrix: workload,
  };
}

/** The scenario for `--scenario matrix --seed S`. */
export function matrixScenario(
  seed: number,
  selection: MatrixSelection = {},
  options: MatrixOptions = {},
): Scenario {
  const workloads = selectWorkloads(generateMatrix(seed, options), selection);
  return {
    name: 'matrix',
    summary:
      `Generated workloads (seed ${seed}): bursts, ramps and Poisson arrivals at 0.3–3x capacity, RPM- and ` +
      'concurrency-bound quotas, 0.1–4 s calls, 4–9 calls per chat, 1 and 3 instances; cold servers, each replayed with admission off',
    runs: workloads.map(workloadRunSpec),
  };
}

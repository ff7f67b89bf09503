import { expectedCallsPerChat, type MessageMix } from './chat-messages';
import type { ClusterSpec } from './cluster-target';
import type { ArrivalShape } from './load-driver';
import type { MatrixWorkload } from './matrix';
import { chatCapacityPerSecond, quotaBound } from './statistics';

/**
 * The benchmark's scenarios (issue 6), in unscaled units: the provider quota and the users as the
 * brief describes them. `applyScale` turns one into what actually runs: provider latency ÷ scale
 * and speed × scale (so each call takes 1/scale as long), RPM × scale, concurrency unchanged — so
 * both terms of mu = min(R/60, C/L) grow by the same factor and every ratio stays comparable —
 * and every user-side time (think time, timeouts, LLM_TIMEOUT, LLM_CHAT_TARGET_MS) ÷ scale, arrival rates × scale.
 * Durations are wall-clock seconds of the run as it is.
 */

export interface ProviderQuota {
  /** Requests per rolling minute. */
  rpm: number;
  concurrency: number;
  /** First-token latency of the simulated model, ms. */
  latencyMs: number;
  /** Stream chunks (≈ tokens) per second. */
  tps: number;
}

/** One run of a scenario (priority and phase2 have two, side by side). */
export interface RunSpec {
  /** Short label of the variant: "brief order", "sized quota"… */
  variant: string;
  quota: ProviderQuota;
  arrival: ArrivalShape;
  /** closed and hold: users; open: ignored. */
  users: number;
  /** open: new users per second (unscaled); 0 = twice what the quota can serve. */
  arrivalRatePerS: number;
  /** Multiple of the quota's chat capacity the open arrivals run at, when arrivalRatePerS is 0. */
  overloadFactor: number;
  /** Mean think time between a user's chats, s (unscaled). */
  thinkS: number;
  /** Wall-clock seconds: users ramp up over rampS; arrivals stop after durationS; goodput is measured after warmupS. */
  rampS: number;
  durationS: number;
  warmupS: number;
  /** The client gives up on a chat after this long, s (unscaled). */
  clientTimeoutS: number;
  scale: number;
  /** Extra Troupe environment (on top of the limits set at the quota). */
  troupeEnv: Record<string, string>;
  /** Load generator processes (more than one when one process would hold too many sockets). */
  workers: number;
  /** Several Troupe instances behind nginx sharing one Redis (the `cluster` scenario); absent = one. */
  cluster?: ClusterSpec;
  /** Skip the warm-up chats: the server meets the load as started (default false). */
  coldStart?: boolean;
  /** The provider's speed changes during the run: at `atS` seconds of arrivals, calls take `factor`× as long. */
  latencyShifts?: Array<{ atS: number; factor: number }>;
  /**
   * Replay the same arrivals with admission off (LLM_ADMISSION=off) to count false refusals: chats
   * refused although, without admission, they completed within the chat deadline (CHAT_TIMEOUT_MS).
   */
  replay?: boolean;
  /** The message mix of the chats (default MESSAGE_MIX): what fixes the calls a chat costs. */
  mix?: MessageMix;
  /** The generated workload this run is (the `matrix` scenario): its parameters, for the report. */
  matrix?: MatrixWorkload;
}

export interface Scenario {
  name: string;
  summary: string;
  runs: RunSpec[];
  /** How the runs are driven: the load scenarios (default), or the CPU-per-call comparison (cpu-scenario.ts). */
  runner?: 'load' | 'cpu';
}

/** The brief's quota: C = 50, R = 500/min, and ~2 s calls (0.5 s to the first token, then ~75 chunks at 50/s). */
export const BRIEF_QUOTA: ProviderQuota = { rpm: 500, concurrency: 50, latencyMs: 500, tps: 50 };

/** The brief's priority order, and its reverse (later stages first). */
export const BRIEF_ORDER = 'host,planner,critic,reporter';
export const REVERSED_ORDER = 'reporter,critic,planner,host';

const base: Omit<RunSpec, 'variant'> = {
  quota: BRIEF_QUOTA,
  arrival: 'closed',
  users: 300,
  arrivalRatePerS: 0,
  overloadFactor: 2,
  thinkS: 60,
  // Users start over one mean think time, as a population would: not all in the same few seconds.
  rampS: 60,
  durationS: 180,
  // The first rolling minute is a transient (empty windows let starts burst, then the spreading
  // window holds them back): the bound R/60 holds for every minute after it.
  warmupS: 60,
  clientTimeoutS: 300,
  // Real time by default: Troupe's own windows and timers (60 s RPM window, 10 s spreading window,
  // AIMD's 10 s steps) do not scale, and scaling the provider makes them weigh more than they do.
  scale: 1,
  troupeEnv: {},
  workers: 1,
};

/** A provider whose calls take about `callMs` (first token, then 75 chunks over the rest). */
function quotaWithCalls(rpm: number, concurrency: number, callMs: number): ProviderQuota {
  const latencyMs = Math.round(callMs * 0.3);
  return { rpm, concurrency, latencyMs, tps: Math.round(75 / ((callMs - latencyMs) / 1000)) };
}

/** One-off chats all at once on a server started a moment ago: no warm-up, no measurements yet. */
const coldBurst: Omit<RunSpec, 'variant' | 'quota' | 'users'> = {
  ...{
    arrival: 'burst',
    arrivalRatePerS: 0,
    overloadFactor: 1,
    thinkS: 0,
    rampS: 0,
    durationS: 1,
    warmupS: 0,
    clientTimeoutS: 120,
    scale: 1,
    troupeEnv: {},
    workers: 1,
  },
  coldStart: true,
  replay: true,
};

export const SCENARIOS: Record<string, Scenario> = {
  'cold-burst': {
    name: 'cold-burst',
    summary:
      'One-off multi-agent chats all at once on a cold server (issue 9): every chat the quota can serve must be admitted and finish',
    runs: [
      {
        ...coldBurst,
        variant: '300 chats, C=50, 6000 rpm, 0.35 s calls',
        users: 300,
        quota: quotaWithCalls(6000, 50, 350),
      },
      {
        ...coldBurst,
        variant: '24 chats, C=4, 600 rpm, 0.3 s calls',
        users: 24,
        quota: quotaWithCalls(600, 4, 300),
      },
      {
        ...coldBurst,
        variant: '30 chats, C=2, 1 s calls, LLM_TIMEOUT=8000',
        users: 30,
        quota: quotaWithCalls(600, 2, 1000),
        troupeEnv: { LLM_TIMEOUT: '8000' },
      },
    ],
  },
  'latency-shift': {
    name: 'latency-shift',
    summary:
      'Open arrivals at 0.8× capacity on a cold server; the provider turns 4× slower for a third of the run, then back',
    runs: [
      {
        ...base,
        variant: '4x slower, then 4x faster',
        arrival: 'open',
        users: 0,
        overloadFactor: 0.8,
        quota: { rpm: 3000, concurrency: 20, latencyMs: 150, tps: 150 },
        durationS: 90,
        warmupS: 0,
        coldStart: true,
        replay: true,
        latencyShifts: [
          { atS: 30, factor: 4 },
          { atS: 60, factor: 1 },
        ],
      },
    ],
  },
  departing: {
    name: 'departing',
    summary:
      '200 chats at once whose clients leave after 1 s and never come back (default grace): quota spent on them',
    runs: [
      {
        ...coldBurst,
        variant: '200 chats, clients leave after 1 s',
        users: 200,
        quota: BRIEF_QUOTA,
        clientTimeoutS: 1,
        replay: false,
      },
    ],
  },
  smoke: {
    name: 'smoke',
    summary: '20 users for 15 s on the brief quota at scale 10: a check that everything runs end to end',
    runs: [
      {
        ...base,
        variant: 'smoke',
        users: 20,
        thinkS: 10,
        rampS: 2,
        durationS: 15,
        warmupS: 3,
        scale: 10,
        clientTimeoutS: 120,
      },
    ],
  },
  phase1: {
    name: 'phase1',
    summary: "The brief's phase 1: 300 concurrent users (closed loop, 60 s think time) on the brief quota",
    runs: [{ ...base, variant: 'brief quota', users: 300 }],
  },
  phase2: {
    name: 'phase2',
    summary: "The brief's phase 2: 500 concurrent users on the brief quota, and on a quota sized for them",
    runs: [
      { ...base, variant: 'brief quota', users: 500 },
      // 500 users thinking 60 s and served within 30 s ask for 500/90 = 5.6 chats/s ≈ 25 calls/s;
      // 2400 rpm (40 calls/s) leaves the headroom a p95 needs (load ≈ 0.75 of the bound).
      { ...base, variant: 'sized quota', users: 500, quota: { ...BRIEF_QUOTA, rpm: 2400, concurrency: 100 } },
    ],
  },
  overload: {
    name: 'overload',
    summary: 'Open arrivals at twice the chats the quota can serve: Troupe must refuse early, not time out',
    runs: [{ ...base, variant: '2x capacity', arrival: 'open', users: 0, overloadFactor: 2, replay: true }],
  },
  priority: {
    name: 'priority',
    summary: "Phase 1 load under the brief's priority order and under the reverse, side by side",
    runs: [
      { ...base, variant: 'brief order', durationS: 150, troupeEnv: { LLM_PRIORITY_ORDER: BRIEF_ORDER } },
      {
        ...base,
        variant: 'reversed order',
        durationS: 150,
        troupeEnv: { LLM_PRIORITY_ORDER: REVERSED_ORDER },
      },
    ],
  },
  'sse-capacity': {
    name: 'sse-capacity',
    summary: '10,000 open streams on one process, most of them waiting as `queued` (SSE_MAX_CONCURRENT=20)',
    runs: [
      {
        ...base,
        variant: '10k streams',
        arrival: 'hold',
        users: 10_000,
        rampS: 60,
        durationS: 90,
        warmupS: 0,
        clientTimeoutS: 3600,
        workers: 2,
        // 20 chats served at once finish ~2 a second, so the line moves as it does on the brief quota;
        // the provider's RPM is raised only so that LLM admission (below) has room for 10,000 chats.
        quota: { ...BRIEF_QUOTA, rpm: 1500 },
        troupeEnv: {
          SSE_MAX_CONCURRENT: '20',
          SSE_QUEUE_MAX: '20000',
          SSE_RESUME_GRACE_MS: '0',
          SSE_TOKEN_GRACE_MS: '0',
          // LLM admission would (rightly) refuse most of 10,000 chats that cannot finish within the
          // 30 s chat target or a minute's deadline: relaxed to its widest (1 h, no chat target)
          // so that the SSE layer is what gets measured.
          LLM_TIMEOUT: '3600000',
          CHAT_TIMEOUT_MS: '0',
          LLM_QUEUE_MAX: '1000000',
          LLM_CHAT_TARGET_MS: '0',
        },
      },
    ],
  },
  cpu: {
    name: 'cpu',
    summary:
      'CPU per provider call: Troupe one-call and multi-agent chats against Portkey relaying the same calls, 50 clients, no quota pressure',
    runner: 'cpu',
    runs: [
      {
        ...base,
        variant: 'cpu per call',
        // users = clients of the closed loop (no think time); durationS = the measured window of
        // each server, after warmupS of the same load (JIT, connection pools, first GCs).
        users: 50,
        durationS: 20,
        warmupS: 5,
        // No quota pressure: limits far above 50 clients, ~0.35 s calls (0.1 s + 75 chunks at 300/s).
        quota: { rpm: 10_000_000, concurrency: 100_000, latencyMs: 100, tps: 300 },
      },
    ],
  },
  cluster: {
    name: 'cluster',
    summary:
      '3 instances behind nginx (deploy/nginx/troupe.conf) sharing Redis, against one sim-llm quota, each given the whole quota, ' +
      'beside one instance on the same quota; then one instance SIGKILLed mid-run (its chats resume elsewhere); ' +
      'then Redis cut off for 20 s; then the brief phase 2 (500 users) on a quota that fits it; then a cold burst of 500 ' +
      'on a high-rate concurrency-bound quota (C=100, ~0.4 s calls, ~250 calls/s) with the leak check',
    runs: [
      // The yardstick: the same load on one instance (behind the same nginx, with Redis).
      {
        ...base,
        variant: 'one instance, brief quota',
        users: 300,
        durationS: 150,
        cluster: { instances: 1 },
      },
      { ...base, variant: '3 instances, brief quota', users: 300, durationS: 150, cluster: { instances: 3 } },
      {
        ...base,
        variant: 'brief quota, one killed',
        users: 300,
        durationS: 150,
        cluster: { instances: 3, killAtFraction: 0.5 },
      },
      // Redis lost for 20 s mid-run: each instance on its 1/N share, then the hand-over; the
      // provider's 429s say whether the cluster stayed inside the quota throughout.
      {
        ...base,
        variant: '3 instances, Redis cut for 20 s',
        users: 300,
        durationS: 150,
        cluster: { instances: 3, redisOutage: { atFraction: 0.5, durationS: 20 } },
      },
      {
        ...base,
        variant: 'phase 2 sized quota',
        users: 500,
        quota: { ...BRIEF_QUOTA, rpm: 2400, concurrency: 100 },
        cluster: { instances: 3 },
      },
      // Where concurrency binds at a high rate: C = 100 with ~0.4 s calls is ~250 calls/s (RPM far
      // above), every start one round trip to Redis. A cold burst of 500 chats; afterwards the leak
      // check reads the leases left in Redis, and the report gives the dispatch path's p99.
      {
        ...coldBurst,
        variant: 'high-rate quota C=100, 0.4 s calls, cold burst',
        users: 500,
        quota: quotaWithCalls(60_000, 100, 400),
        cluster: { instances: 3 },
        replay: false,
      },
    ],
  },
  'users-5000': {
    name: 'users-5000',
    summary: '5,000 concurrent users (closed loop, 60 s think time) on one instance and the brief quota',
    runs: [{ ...base, variant: '5000 users', users: 5000 }],
  },
};

/** What actually runs: the scale applied, the Troupe environment complete. */
export interface ScaledRun {
  spec: RunSpec;
  /** The sim-llm quota as started. */
  quota: ProviderQuota;
  thinkMs: number;
  clientTimeoutMs: number;
  /** open arrivals per second, as run. */
  arrivalRatePerS: number;
  /** Troupe's environment: limits at the quota, LLM_TIMEOUT and LLM_CHAT_TARGET_MS scaled, plus the scenario's own. */
  troupeEnv: Record<string, string>;
  /** Nominal chats/s the quota can complete (with the nominal call latency and the message mix). */
  nominalCapacityChatsPerS: number;
}

/** Nominal mean call latency of the sim for the mix, ms: first token plus ~75 chunks (measured: 60–150 by agent). */
export function nominalCallMs(quota: ProviderQuota): number {
  return quota.latencyMs + (75 / quota.tps) * 1000;
}

export function applyScale(spec: RunSpec): ScaledRun {
  const scale = spec.scale;
  const quota: ProviderQuota = {
    rpm: Math.round(spec.quota.rpm * scale),
    concurrency: spec.quota.concurrency,
    latencyMs: Math.round(spec.quota.latencyMs / scale),
    tps: Math.round(spec.quota.tps * scale),
  };
  const capacity = chatCapacityPerSecond(
    quotaBound(quota, nominalCallMs(quota)),
    expectedCallsPerChat(spec.mix, spec.troupeEnv.AGENT_PARALLEL === 'on'),
  );
  const arrivalRatePerS =
    spec.arrivalRatePerS > 0 ? spec.arrivalRatePerS * scale : capacity * spec.overloadFactor;
  return {
    spec,
    quota,
    thinkMs: (spec.thinkS * 1000) / scale,
    clientTimeoutMs: (spec.clientTimeoutS * 1000) / scale,
    arrivalRatePerS,
    nominalCapacityChatsPerS: capacity,
    troupeEnv: {
      // Troupe's limits at the quota: any 429 is then the scheduler's doing, not the configuration's.
      LLM_MAX_CONCURRENT: String(quota.concurrency),
      LLM_MAX_RPM: String(quota.rpm),
      LLM_TIMEOUT: String(Math.round(60_000 / scale)),
      CHAT_TIMEOUT_MS: String(Math.round(60_000 / scale)),
      LLM_CHAT_TARGET_MS: String(Math.round(30_000 / scale)),
      // The load scenarios measure the scheduler against the quota with the sim's fixed calls per
      // chat (chat-messages.ts); the response cache would answer their 77 repeating messages and
      // change that cost (it has its own scenario, `cache`). `--env LLM_CACHE=on` puts it back.
      LLM_CACHE: 'off',
      ...spec.troupeEnv,
    },
  };
}

import { setMaxListeners } from 'node:events';
import http from 'node:http';
import { composeMessage, pickKind, type MessageMix } from './chat-messages';
import { now, runChat, type ChatRecord, type ChatTarget } from './chat-client';
import { runChatWithFailover } from './failover-client';
import { seededRandom } from './statistics';

/**
 * Drives one process's share of the users. Three arrival shapes:
 * - closed: N users, each chats, thinks, chats again (a refused user comes back after the longer
 *   of Retry-After and its think time) until the arrival phase ends;
 * - open: new users arrive as a Poisson process at a fixed rate, one chat each, whatever happens;
 * - hold: N users each open one chat over the ramp and keep the stream until the release time
 *   (sse-capacity: how many open streams one process holds, and at what memory cost).
 */

/**
 * closed: users who think and come back; open: Poisson arrivals; hold: streams held open until the
 * end; burst: every user sends one chat at the same moment (a cold burst); ramp: every user sends
 * one chat, the arrival rate rising linearly from 0 to its peak over the ramp (user i of N at
 * rampMs·√((i + ½)/N)), at the same moments in every run.
 */
export type ArrivalShape = 'closed' | 'open' | 'hold' | 'burst' | 'ramp';

export interface LoadPlan {
  url: string;
  arrival: ArrivalShape;
  /** closed and hold: users of this process. */
  users: number;
  /** Global index of this process's first user (user ids stay unique across worker processes). */
  userOffset: number;
  /** closed: mean think time between chats, ms (uniform on 0.5–1.5 × mean). */
  thinkMs: number;
  /** closed: users start spread over this; hold: streams open spread over this; ramp: the ramp, ms. */
  rampMs: number;
  /** open: arrivals per second of this process. */
  arrivalRatePerS: number;
  /** Arrivals stop this long after startAt (hold: streams are released then), ms. */
  durationMs: number;
  /** The client gives up on a chat after this long, ms. */
  timeoutMs: number;
  seed: number;
  /** open: chats this process keeps open at most; arrivals past it are counted as skipped. */
  maxOpen: number;
  /** Absolute epoch ms at which the arrival phase starts (shared by all worker processes). */
  startAt: number;
  /**
   * Several instances behind a balancer (cluster): a broken stream is resumed elsewhere, and every
   * chat opens a new conversation (the benchmark's instances each keep their own embedded store).
   */
  failover?: boolean;
  /** The message mix the chats are drawn from (default MESSAGE_MIX). */
  mix?: MessageMix;
}

/** Live counters for the progress bar. */
export interface LoadCounters {
  attempted: number;
  completed: number;
  refused: number;
  failed: number;
  timedOut: number;
  released: number;
  /** Chats whose request is out and whose end has not come. */
  open: number;
  /** Open streams that have received `queued` and no `agent_start` yet. */
  waiting: number;
  /** Open-arrival chats not started because maxOpen chats were open. */
  skipped: number;
}

export function zeroCounters(): LoadCounters {
  return {
    attempted: 0,
    completed: 0,
    refused: 0,
    failed: 0,
    timedOut: 0,
    released: 0,
    open: 0,
    waiting: 0,
    skipped: 0,
  };
}

export interface LoadDriver {
  counters: LoadCounters;
  records: ChatRecord[];
  /** Resolves when every chat of this share has ended. */
  finished: Promise<void>;
  /** Stops new arrivals now (the chats already open run to their end). */
  stopArrivals(): void;
  /** Ends every open stream as released (hold) or cancelled (a second Ctrl-C). */
  releaseAll(): void;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted || ms <= 0) return resolve();
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });

export function startLoad(plan: LoadPlan): LoadDriver {
  const counters = zeroCounters();
  const records: ChatRecord[] = [];
  const stop = new AbortController();
  const release = new AbortController();
  // Every waiting user and open stream listens to these two: thousands of listeners are expected.
  setMaxListeners(0, stop.signal, release.signal);
  const agent = new http.Agent({
    keepAlive: true,
    maxSockets: Infinity,
    maxFreeSockets: Math.max(256, plan.users),
    // Idle keep-alive sockets are dropped before the server's 65 s keep-alive timeout would.
    timeout: 30_000,
    scheduling: 'lifo',
  });
  const target: ChatTarget = { url: new URL(plan.url), agent };
  const endAt = plan.startAt + plan.durationMs;
  const random = seededRandom(plan.seed);
  setTimeout(() => stop.abort(), Math.max(0, endAt - now())).unref();

  const chat = async (user: number, draw: () => number, conversationId?: string): Promise<ChatRecord> => {
    const kind = pickKind(draw(), plan.mix);
    counters.attempted++;
    counters.open++;
    let waiting = false;
    const record = await (plan.failover ? runChatWithFailover : runChat)(
      target,
      { user, userId: `bench-user-${user}`, kind, message: composeMessage(kind, draw()), conversationId },
      {
        timeoutMs: plan.timeoutMs,
        release: release.signal,
        onEvent: (event) => {
          if (event === 'queued' && !waiting) {
            waiting = true;
            counters.waiting++;
          } else if (event === 'agent_start' && waiting) {
            waiting = false;
            counters.waiting--;
          }
        },
      },
    );
    if (waiting) counters.waiting--;
    counters.open--;
    const key = record.outcome === 'timed_out' ? 'timedOut' : record.outcome;
    counters[key]++;
    records.push(record);
    return record;
  };

  const closedUser = async (user: number, startDelayMs: number, draw: () => number): Promise<void> => {
    await sleep(plan.startAt + startDelayMs - now(), stop.signal);
    let conversationId: string | undefined;
    while (!stop.signal.aborted) {
      const record = await chat(user, draw, conversationId);
      if (record.outcome === 'completed' && !plan.failover) conversationId = record.conversationId;
      const thinkMs = plan.thinkMs * (0.5 + draw());
      await sleep(
        record.outcome === 'refused' ? Math.max(record.retryAfterMs ?? 0, thinkMs) : thinkMs,
        stop.signal,
      );
    }
  };

  const holdUser = async (user: number, startDelayMs: number, draw: () => number): Promise<void> => {
    await sleep(plan.startAt + startDelayMs - now(), stop.signal);
    if (!stop.signal.aborted) await chat(user, draw);
  };

  const openArrivals = async (): Promise<void> => {
    const chats: Array<Promise<unknown>> = [];
    let next = plan.startAt;
    let user = plan.userOffset;
    while (!stop.signal.aborted) {
      // Poisson arrivals: exponential gaps at the plan's rate.
      next += (-Math.log(1 - random()) / plan.arrivalRatePerS) * 1000;
      if (next >= endAt) break;
      await sleep(next - now(), stop.signal);
      if (stop.signal.aborted) break;
      if (counters.open >= plan.maxOpen) {
        counters.skipped++;
        continue;
      }
      chats.push(chat(user++, random));
    }
    await Promise.all(chats);
  };

  let finished: Promise<unknown>;
  if (plan.arrival === 'open') {
    finished = plan.arrivalRatePerS > 0 ? openArrivals() : Promise.resolve();
  } else {
    const users: Array<Promise<void>> = [];
    for (let index = 0; index < plan.users; index++) {
      const user = plan.userOffset + index;
      const userRandom = seededRandom(plan.seed * 1_000_003 + user);
      // hold: streams open evenly over the ramp; ramp: ever closer together (a linearly rising
      // rate); closed: each user starts at a random moment of it.
      const startDelayMs =
        plan.arrival === 'hold'
          ? (index / Math.max(1, plan.users)) * plan.rampMs
          : plan.arrival === 'ramp'
            ? Math.sqrt((index + 0.5) / Math.max(1, plan.users)) * plan.rampMs
            : userRandom() * plan.rampMs;
      users.push(
        plan.arrival === 'burst'
          ? holdUser(user, 0, userRandom)
          : plan.arrival === 'hold' || plan.arrival === 'ramp'
            ? holdUser(user, startDelayMs, userRandom)
            : closedUser(user, startDelayMs, userRandom),
      );
    }
    finished = Promise.all(users);
  }
  if (plan.arrival === 'hold') {
    // Streams are released at the end of the arrival phase; those that finished before stay as they are.
    stop.signal.addEventListener('abort', () => release.abort(), { once: true });
  }

  return {
    counters,
    records,
    finished: finished.then(() => agent.destroy()),
    stopArrivals: () => stop.abort(),
    releaseAll: () => {
      stop.abort();
      release.abort();
    },
  };
}

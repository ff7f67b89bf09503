import type { Clock } from '../clock';
import type { AimdPolicy, EffectiveLimits } from './aimd';
import { StartWindow, TokenWindow, type TokenReservation } from './rate-window';

/**
 * The Limiter port: the provider quota in domain words. The scheduler asks it whether one call may
 * start now; the limiter answers with a permit or with when to ask again. Every operation is
 * asynchronous so that an adapter may answer from a network round trip: the in-memory adapter below
 * (the default) answers at once, the Redis adapter (shared limits across instances, docs/ARCHITECTURE.md §6)
 * with one atomic script per operation.
 */

/** One started call's claim on the quota; give it back with `release` (idempotent). */
export interface Permit {
  readonly id: number | string;
  readonly startedAt: number;
  readonly estimatedTokens: number;
}

export type StartDecision =
  | { started: true; permit: Permit }
  /**
   * `retryAt`: the earliest time (this process's clock) the rate or token window may allow a start
   * (schedule one timer); null: blocked on concurrency, so only a release can open a slot (no timer
   * needed). An adapter whose releases happen elsewhere (other instances) returns a time instead.
   */
  | { started: false; retryAt: number | null };

/**
 * Up to `count` starts granted in one ask (`tryStartMany`): `permits` in the order granted; when
 * fewer than asked, `retryAt` says when to ask again, as in StartDecision (null: only a release
 * opens a slot; also null when every start asked for was granted).
 */
export interface StartBatch {
  permits: Permit[];
  retryAt: number | null;
}

export interface LimiterSnapshot {
  active: number;
  /** Starts in the last 60 s. */
  startsLastMinute: number;
  /**
   * Starts the rate windows (RPM and its spreading sub-window) allow right now, concurrency aside;
   * undefined when not known (a shared limiter that has not heard from Redis lately). Admission's
   * room counts the smaller of these and the free slots: where RPM binds, free slots are no room.
   */
  startsAvailable?: number;
  tokensLastMinute: number;
  limits: EffectiveLimits;
  configured: EffectiveLimits & { tpm: number };
  /** Until when (this process's clock) a provider-wide Retry-After holds every start; 0 = none. */
  heldUntil: number;
  /**
   * The limits are this instance's own share of a shared quota (the fail-safe while Redis is lost):
   * only this instance's chats compete for them, whatever the other instances hold.
   */
  instanceShare?: boolean;
}

export interface Limiter {
  /**
   * Starts one call if every limit allows it now. `orderKey` (this process's clock, ms; smaller goes
   * first) is the call's place in the priority order: an adapter shared by several instances lets an
   * earlier call waiting on another instance go first. A single process's queue already orders its
   * calls, so the in-memory adapter ignores it.
   */
  tryStart(estimatedTokens: number, orderKey?: number): Promise<StartDecision>;
  /**
   * Starts up to `count` calls of `estimatedTokens` each, every limit checked for each start as
   * `tryStart` would, stopping at the first that may not start. One answer for several starts: an
   * adapter behind a round trip (Redis) pays it once for all the calls waiting at the head, rather
   * than once per call while slots stand empty. `orderKey` is the first call's.
   */
  tryStartMany(estimatedTokens: number, orderKey: number | undefined, count: number): Promise<StartBatch>;
  /**
   * The call ended; its concurrency slot returns. Calling it twice is a no-op. A start asked after
   * this returns must see the slot free, before the promise settles (a store behind one connection
   * orders the two): the queue asks at once.
   */
  release(permit: Permit): Promise<void>;
  /** Corrects the token reservation with the call's real usage. */
  settle(permit: Permit, actualTokens: number): Promise<void>;
  /**
   * The provider asked everyone to wait (a 429's Retry-After): no call starts for `durationMs`.
   * Holds only extend: a shorter hold never shortens a longer one.
   */
  holdStarts(durationMs: number): Promise<void>;
  /** The last known state, without a round trip (status pages, admission). */
  snapshot(): LimiterSnapshot;
  close?(): Promise<void>;
}

export interface InMemoryLimiterOptions {
  maxConcurrent: number;
  maxRpm: number;
  /** 0 = no token limit. */
  maxTpm: number;
  clock: Clock;
  /** The limits to enforce now (AIMD); defaults to the configured ones. Never above them. */
  aimd?: Pick<AimdPolicy, 'limits'>;
  /** The spreading sub-window (see rate-window.ts); 0 turns it off. */
  burstWindowMs?: number;
  /**
   * Added to the provider's 60 s RPM/TPM windows (default 500 ms). Our start times are taken before
   * the request crosses the network, the provider's on arrival: with jitter, R starts spaced exactly
   * 60 s apart here can land 59.9 s apart there, and the provider sees R+1 in its window. Treating
   * the window as 60 s + margin keeps every provider-side minute within the limit.
   */
  windowMarginMs?: number;
  /** The provider's window (60 s); the shared behaviour suite shortens it to match the Redis run. */
  providerWindowMs?: number;
}

/** A batch made of single starts, up to `count`, stopping at the first refusal. */
export function startEach(count: number, start: () => StartDecision): StartBatch {
  const permits: Permit[] = [];
  while (permits.length < Math.max(1, count)) {
    const decision = start();
    if (!decision.started) return { permits, retryAt: decision.retryAt };
    permits.push(decision.permit);
  }
  return { permits, retryAt: null };
}

/** One start's decision as a batch of at most one. */
export function asBatch(decision: StartDecision): StartBatch {
  return decision.started
    ? { permits: [decision.permit], retryAt: null }
    : { permits: [], retryAt: decision.retryAt };
}

/** A batch of at most one as one start's decision (the converse of asBatch). */
export function firstStart({ permits, retryAt }: StartBatch): StartDecision {
  return permits.length > 0 ? { started: true, permit: permits[0] } : { started: false, retryAt };
}

/**
 * Returns a permit nothing was sent under: its token reservation is settled at zero (kept if that
 * fails: more than was used, never less), then its slot goes back.
 */
export function giveBack(limiter: Pick<Limiter, 'settle' | 'release'>, permit: Permit): Promise<void> {
  return limiter
    .settle(permit, 0)
    .catch(() => undefined)
    .then(() => limiter.release(permit));
}

/** The provider's rolling window for RPM and TPM. */
export const PROVIDER_WINDOW_MS = 60_000;
export const DEFAULT_WINDOW_MARGIN_MS = 500;

interface InMemoryPermit extends Permit {
  released: boolean;
  reservation: TokenReservation;
}

/** Concurrency + rolling RPM window + optional rolling TPM window, in one process. */
export class InMemoryLimiter implements Limiter {
  private readonly clock: Clock;
  private readonly starts: StartWindow;
  private readonly tokens: TokenWindow;
  private readonly effectiveLimits: () => EffectiveLimits;
  private active = 0;
  private nextId = 1;
  private heldUntil = 0;
  private readonly reportWindowMs: number;

  constructor(private readonly options: InMemoryLimiterOptions) {
    this.clock = options.clock;
    this.reportWindowMs = options.providerWindowMs ?? PROVIDER_WINDOW_MS;
    const windowMs = this.reportWindowMs + Math.max(0, options.windowMarginMs ?? DEFAULT_WINDOW_MARGIN_MS);
    this.starts = new StartWindow({
      capacity: options.maxRpm,
      windowMs,
      burstWindowMs: options.burstWindowMs,
    });
    this.tokens = new TokenWindow(options.maxTpm, windowMs);
    const aimd = options.aimd;
    this.effectiveLimits = aimd
      ? () => aimd.limits()
      : () => ({ concurrency: options.maxConcurrent, rpm: options.maxRpm, tpm: options.maxTpm });
  }

  tryStart(estimatedTokens: number): Promise<StartDecision> {
    return Promise.resolve(this.tryStartNow(estimatedTokens));
  }

  tryStartMany(estimatedTokens: number, _orderKey: number | undefined, count: number): Promise<StartBatch> {
    return Promise.resolve(startEach(count, () => this.tryStartNow(estimatedTokens)));
  }

  /** The synchronous core of tryStart (this adapter needs no round trip). */
  tryStartNow(estimatedTokens: number): StartDecision {
    const now = this.clock.now();
    if (this.heldUntil > now) return { started: false, retryAt: this.heldUntil };
    const limits = this.limits();
    if (this.active >= limits.concurrency) return { started: false, retryAt: null };
    const allowedAt = Math.max(
      this.starts.nextAllowedAt(limits.rpm, now),
      this.tokens.nextAllowedAt(estimatedTokens, now, limits.tpm),
    );
    if (allowedAt > now) return { started: false, retryAt: allowedAt };
    this.active++;
    this.starts.record(now);
    const permit: InMemoryPermit = {
      id: this.nextId++,
      startedAt: now,
      estimatedTokens,
      released: false,
      reservation: this.tokens.reserve(estimatedTokens, now),
    };
    return { started: true, permit };
  }

  release(permit: Permit): Promise<void> {
    const own = permit as InMemoryPermit;
    if (!own.released) {
      own.released = true;
      this.active--;
    }
    return Promise.resolve();
  }

  settle(permit: Permit, actualTokens: number): Promise<void> {
    this.tokens.settle((permit as InMemoryPermit).reservation, actualTokens, this.clock.now());
    return Promise.resolve();
  }

  holdStarts(durationMs: number): Promise<void> {
    this.heldUntil = Math.max(this.heldUntil, this.clock.now() + Math.max(0, durationMs));
    return Promise.resolve();
  }

  /**
   * Counts starts and tokens that happened outside this limiter (this instance's share of the
   * shared window, when falling back to this one during a Redis outage): each start at the time it
   * is known to have happened by (at most now), so it holds this window's room until a window after
   * that; tokens as if reserved now.
   */
  countExternal(starts: ReadonlyArray<{ at: number; count: number }>, tokens: number): void {
    const now = this.clock.now();
    // Oldest first, never before what is already recorded (the window is kept in time order): a
    // start recorded later than it happened only leaves the window later — the safe side.
    for (const entry of [...starts].sort((a, b) => a.at - b.at)) {
      const at = Math.min(now, Math.max(entry.at, this.starts.latest() ?? -Infinity));
      for (let index = 0; index < entry.count; index++) this.starts.record(at);
    }
    if (tokens > 0) this.tokens.reserve(tokens, now);
  }

  snapshot(): LimiterSnapshot {
    const now = this.clock.now();
    return {
      active: this.active,
      // The status page reports the nominal minute; the margin only delays starts.
      startsLastMinute: this.starts.countSince(now - this.reportWindowMs),
      startsAvailable: this.starts.availableAt(this.limits().rpm, now),
      tokensLastMinute: this.tokens.used(now),
      limits: this.limits(),
      heldUntil: this.heldUntil > now ? this.heldUntil : 0,
      configured: {
        concurrency: this.options.maxConcurrent,
        rpm: this.options.maxRpm,
        tpm: this.options.maxTpm,
      },
    };
  }

  private limits(): EffectiveLimits {
    const limits = this.effectiveLimits();
    return {
      concurrency: Math.max(1, Math.min(limits.concurrency, this.options.maxConcurrent)),
      rpm: Math.max(1, Math.min(limits.rpm, this.options.maxRpm)),
      ...(this.options.maxTpm > 0
        ? { tpm: Math.max(1, Math.min(limits.tpm ?? this.options.maxTpm, this.options.maxTpm)) }
        : {}),
    };
  }
}

import type Redis from 'ioredis';
import type { Clock } from '../../clock';
import type { EffectiveLimits, RateLimitKind } from '../aimd';
import {
  DEFAULT_WINDOW_MARGIN_MS,
  PROVIDER_WINDOW_MS,
  firstStart,
  type Limiter,
  type LimiterSnapshot,
  type Permit,
  type StartBatch,
  type StartDecision,
} from '../limiter';
import { ClusterLoadView, type ClusterLoad } from './cluster-load';
import { spreadWindowMs } from '../rate-window';
import { withCommands, type RedisWithCommands } from '../../redis/redis-commands';
import { RedisLeaseBook } from './redis-lease-book';
import { readStartReply } from './start-reply';
import {
  DEFAULT_HEAD_TTL_MS,
  DEFAULT_LEASE_MS,
  DEFAULT_POLL_MS,
  DEFAULT_RECONCILE_EVERY_MS,
  DEFAULT_RENEW_EVERY_MS,
  limiterKeys,
  recoveryArgs,
  sharedAimdSettings,
  type RedisLimiterOptions,
  type SharedAimdSettings,
} from './redis-limiter-options';

/** Added to one renewal period: how long starts wait after Redis lost the shared state. */
const RESET_GRACE_MARGIN_MS = 500;

/**
 * The Limiter port over Redis: one quota shared by every instance (docs/ARCHITECTURE.md §7, "shared limits are
 * atomic"). Each operation is one Lua script (./commands) that reads Redis's own clock, so no
 * instance's clock and no local copy decides a start:
 * - concurrency as leases in a ZSET scored by expiry, renewed by a timer while the call runs; a
 *   killed instance's leases expire and are reaped inside tryStart, a released one is removed;
 * - strict rolling-window RPM (60 s + margin) plus the start-spreading sub-window, as in memory;
 * - TPM reserved at start, settled with the real usage;
 * - the provider-wide hold (Retry-After) and the AIMD state in one hash, shared.
 * The lease bookkeeping (renewal, removal until confirmed) is RedisLeaseBook's.
 * Errors (Redis unreachable, a command timeout) are thrown: the fail-safe limiter decides what to
 * do about them.
 */

interface RedisPermit extends Permit {
  readonly id: string;
  released: boolean;
}

export class RedisLimiter implements Limiter {
  readonly windowMs: number;
  private readonly redis: RedisWithCommands;
  private readonly clock: Clock;
  private readonly keys: string[];
  /** tryStart's keys: the limiter's own and the waiting heads of every instance (the order). */
  private readonly startKeys: string[];
  private readonly stateKey: string;
  private readonly reportWindowMs: number;
  private readonly leaseMs: number;
  private readonly renewEveryMs: number;
  /** The spreading sub-window (0: off). */
  private readonly burstWindowMs: number;
  private readonly aimdArgs: number[];
  private readonly aimd: SharedAimdSettings;
  private readonly leases: RedisLeaseBook;
  private nextId = 1;
  /** Redis time minus this process's clock, measured at each reply (midpoint of the round trip). */
  private offsetMs = 0;
  private offsetKnown = false;
  /** The shared state's epoch as last seen: a new one means Redis lost the state (tryStart-7.lua). */
  private epoch = '';
  /** The limits and the hold as Redis last said; the window's figures come from `load`. */
  private last: Pick<LimiterSnapshot, 'limits' | 'configured' | 'heldUntil'>;
  private readonly load: ClusterLoadView;
  /** What the rate windows allowed at the last reply (tryStart-7.lua), and when (this clock). */
  private available?: { starts: number; at: number };
  private closed = false;

  constructor(private readonly options: RedisLimiterOptions) {
    this.redis = withCommands(options.redis);
    this.clock = options.clock;
    const keys = limiterKeys(options.keyPrefix);
    this.keys = [keys.leases, keys.starts, keys.tokens, keys.amounts, keys.state];
    this.startKeys = [...this.keys, keys.heads, keys.headsUntil];
    this.stateKey = keys.state;
    this.reportWindowMs = options.providerWindowMs ?? PROVIDER_WINDOW_MS;
    this.windowMs = this.reportWindowMs + Math.max(0, options.windowMarginMs ?? DEFAULT_WINDOW_MARGIN_MS);
    this.leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
    this.renewEveryMs = options.renewEveryMs ?? DEFAULT_RENEW_EVERY_MS;
    this.burstWindowMs = options.burstWindowMs ?? spreadWindowMs(options.maxRpm);
    this.aimd = sharedAimdSettings(options);
    this.aimdArgs = recoveryArgs(this.aimd);
    const configured = { concurrency: options.maxConcurrent, rpm: options.maxRpm, tpm: options.maxTpm };
    this.last = { limits: this.clamp(configured), configured, heldUntil: 0 };
    this.load = new ClusterLoadView(options.clock);
    this.leases = new RedisLeaseBook({
      redis: this.redis,
      clock: options.clock,
      leasesKey: keys.leases,
      stateKey: keys.state,
      releaseChannel: this.releaseChannel,
      loadChannel: this.loadChannel,
      leaseMs: this.leaseMs,
      renewEveryMs: this.renewEveryMs,
      reconcileEveryMs: options.reconcileEveryMs ?? DEFAULT_RECONCILE_EVERY_MS,
    });
  }

  async tryStart(estimatedTokens: number, orderKey?: number): Promise<StartDecision> {
    return firstStart(await this.tryStartMany(estimatedTokens, orderKey, 1));
  }

  /** Up to `count` starts in one script (tryStart-7.lua checks every limit again after each). */
  async tryStartMany(
    estimatedTokens: number,
    orderKey: number | undefined,
    count: number,
  ): Promise<StartBatch> {
    const ids: string[] = [];
    for (let index = 0; index < Math.max(1, Math.floor(count)); index++)
      ids.push(`${this.options.instanceId}:${this.nextId++}`);
    const sentAt = this.clock.now();
    let reply: Array<number | string>;
    try {
      reply = await this.startScript(ids, estimatedTokens, orderKey);
    } catch (error) {
      // No answer is no refusal: Redis may have granted the leases after our timeout gave up.
      this.leases.forget(...ids);
      throw error;
    }
    const started = Number(reply[0]);
    if (this.closed) {
      // Granted after close (a drain): nobody will run the calls.
      if (started > 0) this.leases.forget(...ids.slice(0, started));
      return { permits: [], retryAt: null };
    }
    const receivedAt = this.clock.now();
    this.options.onRoundTrip?.(receivedAt - sentAt);
    const answer = readStartReply(reply);
    this.offsetMs = answer.redisNow - (sentAt + receivedAt) / 2;
    this.offsetKnown = true;
    this.decreases = answer.decreases;
    this.noteEpoch(answer.epoch);
    this.last = {
      ...this.last,
      limits: this.clamp(answer.limits),
      heldUntil: answer.heldUntil > 0 ? this.toLocal(answer.heldUntil) : 0,
    };
    const { active, startsLastMinute, tokensLastMinute } = answer;
    this.load.note(answer.redisNow, { active, startsLastMinute, tokensLastMinute }, receivedAt);
    this.available = { starts: answer.startsAvailable, at: receivedAt };
    // Redis answers: a good moment to remove what an earlier failure left behind.
    if (this.leases.hasUnreleased()) void this.reconcile().catch(() => undefined);
    const permits: RedisPermit[] = [];
    for (const id of ids.slice(0, started)) {
      this.leases.hold(id);
      permits.push({ id, startedAt: receivedAt, estimatedTokens, released: false });
    }
    if (started === ids.length) return { permits, retryAt: null };
    return { permits, retryAt: Math.max(receivedAt, this.toLocal(answer.retryAt)) };
  }

  private startScript(ids: string[], estimatedTokens: number, orderKey: number | undefined) {
    return this.redis.tryStart(
      ...this.startKeys,
      ids.length,
      Math.max(0, Math.round(estimatedTokens)),
      this.leaseMs,
      this.windowMs,
      this.reportWindowMs,
      this.burstWindowMs,
      this.options.maxConcurrent,
      this.options.maxRpm,
      this.options.maxTpm,
      ...this.aimdArgs,
      this.options.pollMs ?? DEFAULT_POLL_MS,
      this.options.instanceId,
      // The key in Redis time, so that every instance's keys compare on one clock.
      // Before the first reply the offset is unknown: that one call takes no place in the order.
      orderKey === undefined || !Number.isFinite(orderKey) || !this.offsetKnown
        ? ''
        : Math.round(orderKey + this.offsetMs),
      this.options.headTtlMs ?? DEFAULT_HEAD_TTL_MS,
      this.loadChannel,
      this.epoch,
      this.renewEveryMs + RESET_GRACE_MARGIN_MS,
      ...ids,
    );
  }

  async release(permit: Permit): Promise<void> {
    const own = permit as RedisPermit;
    if (own.released) return;
    own.released = true;
    await this.leases.release(own.id);
  }

  /**
   * Removes every lease Redis may hold for a call that no longer runs (a failed release, a start
   * whose answer never came). Resolves once Redis confirmed; rejects (keeping them for the next
   * attempt) if it did not answer.
   */
  reconcile(): Promise<void> {
    return this.leases.reconcile();
  }

  /** Leases whose calls run here now (renewed), and leases being removed (not yet confirmed). */
  leaseCounts(): { held: number; unreleased: number } {
    return this.leases.counts();
  }

  /**
   * Redis lost the shared state (a restart, a FLUSHALL) since the last reply: the leases of the calls
   * still running here are written back now, not at the next renewal — every start waits for them.
   */
  private noteEpoch(epoch: string): void {
    const reset = this.epoch !== '' && epoch !== this.epoch;
    this.epoch = epoch;
    if (reset && this.leases.counts().held > 0) void this.renewLeases().catch(() => undefined);
  }

  async settle(permit: Permit, actualTokens: number): Promise<void> {
    if (this.options.maxTpm <= 0) return;
    await this.redis.settle(
      this.keys[2],
      this.keys[3],
      this.stateKey,
      String(permit.id),
      Math.round(actualTokens),
    );
  }

  async holdStarts(durationMs: number): Promise<void> {
    const [heldUntil] = (await this.redis.holdStarts(this.stateKey, Math.max(0, Math.round(durationMs)))).map(
      Number,
    );
    const local = this.toLocal(heldUntil);
    if (local > this.last.heldUntil) this.last = { ...this.last, heldUntil: local };
  }

  /** The shared AIMD decrease (one script, with the cooldown). Resolves true if the limits were lowered. */
  async rateLimited(kind: RateLimitKind): Promise<boolean> {
    const reply = (
      await this.redis.rateLimited(
        this.stateKey,
        kind,
        this.options.maxConcurrent,
        this.options.maxRpm,
        this.options.maxTpm,
        this.aimd.decreaseFactor,
        this.aimd.cooldownMs,
        ...this.aimdArgs,
      )
    ).map(Number);
    this.decreases = reply[4];
    this.last = { ...this.last, limits: this.clamp({ concurrency: reply[1], rpm: reply[2], tpm: reply[3] }) };
    return reply[0] === 1;
  }

  /**
   * Gives the shared windows the calls started while Redis was unreachable (see adopt-5.lua).
   * `startedAt` is this process's clock.
   */
  async adopt(
    entries: Array<{ id: string; startedAt: number; tokens: number; running: boolean }>,
  ): Promise<void> {
    if (entries.length === 0) return;
    const now = this.clock.now();
    const args: Array<string | number> = [];
    for (const entry of entries) {
      args.push(
        entry.id,
        Math.max(0, Math.round(now - entry.startedAt)),
        Math.round(entry.tokens),
        entry.running ? 1 : 0,
      );
    }
    await this.redis.adopt(...this.keys, this.leaseMs, this.windowMs, this.loadChannel, ...args);
  }

  /**
   * Claims the lease of a call this limiter did not grant (one started during an outage, about to be
   * adopted): renewed from now on while the call runs; release it as usual. Claim it before `adopt`
   * writes the lease, so a release that comes meanwhile is sent after the adoption and undoes it.
   */
  permitFor(id: string, startedAt: number, estimatedTokens: number): Permit {
    this.leases.hold(id);
    return { id, startedAt, estimatedTokens, released: false } as RedisPermit;
  }

  get instanceId(): string {
    return this.options.instanceId;
  }

  /** Where releases are announced while an instance waits for a slot (subscribe to wake dispatch). */
  get releaseChannel(): string {
    return `${this.options.keyPrefix}llm:released`;
  }

  /** A cheap round trip: is Redis answering? */
  async ping(): Promise<void> {
    await this.redis.ping();
  }

  /**
   * Where every start, release and hand-over is announced (tryStart-7.lua): subscribed, an instance
   * knows the cluster's calls in flight as of the last message, not as of its last call or heartbeat
   * — what its fail-safe holds for the other instances when Redis is lost depends on it.
   */
  get loadChannel(): string {
    return `${this.options.keyPrefix}llm:load`;
  }

  /** Follows the load channel on a subscriber connection (built and owned by the composition root). */
  async followLoad(subscriber: Redis): Promise<void> {
    const channel = this.loadChannel;
    subscriber.on('message', (from: string, message: string) => {
      if (from === channel) this.announced(message);
    });
    await subscriber.subscribe(channel);
  }

  /** One announcement on the load channel (see ClusterLoadView). */
  announced(message: string): void {
    const starts = this.load.announced(message);
    if (starts) this.options.onClusterStarts?.(starts);
  }

  /** Shared figures seen elsewhere (the registry's heartbeat) keep the cluster load fresh. */
  observe(load: Omit<ClusterLoad, 'observedAt'>, observedAt = this.clock.now()): void {
    this.load.observe(load, observedAt);
  }

  clusterLoad(): ClusterLoad {
    return this.load.current();
  }

  /** The AIMD decreases the cluster has made (last known). */
  decreases = 0;

  snapshot(): LimiterSnapshot {
    const heldUntil = this.last.heldUntil > this.clock.now() ? this.last.heldUntil : 0;
    // The window as last heard of: an idle instance's status page follows the others' calls too.
    const { active, startsLastMinute, tokensLastMinute } = this.load.current();
    return {
      ...this.last,
      active,
      startsLastMinute,
      startsAvailable: this.startsAvailable(),
      tokensLastMinute,
      heldUntil,
    };
  }

  /**
   * The starts the rate windows allowed at the last reply, while that says something: within one
   * spreading sub-window of it (after that the sub-window has turned over, and other instances may
   * have started calls meanwhile), or one renewal period with spreading off. Undefined otherwise.
   */
  private startsAvailable(): number | undefined {
    const available = this.available;
    if (!available || !Number.isFinite(available.starts)) return undefined;
    const trustedMs = this.burstWindowMs > 0 ? this.burstWindowMs : this.renewEveryMs;
    return this.clock.now() - available.at < trustedMs ? available.starts : undefined;
  }

  /** Converts a Redis time to this process's clock. */
  toLocal(redisMs: number): number {
    return redisMs - this.offsetMs;
  }

  /**
   * Renews every lease of a call still running here now, not at the next timer: after an outage
   * longer than the lease, Redis has let them expire and must count them again before it decides
   * another instance's start.
   */
  async renewLeases(): Promise<void> {
    await this.leases.renewAll();
  }

  /** Stops renewing (leases then expire on their own); the owner closes the connection. */
  close(): Promise<void> {
    this.closed = true;
    return this.leases.close();
  }

  /** Test seam: stop renewing without releasing, as a SIGKILLed process would. */
  abandonLeases(): void {
    this.closed = true;
    this.leases.abandon();
  }

  private clamp(limits: EffectiveLimits): EffectiveLimits {
    const { maxConcurrent, maxRpm, maxTpm } = this.options;
    return {
      concurrency: Math.max(1, Math.min(limits.concurrency, maxConcurrent)),
      rpm: Math.max(1, Math.min(limits.rpm, maxRpm)),
      ...(maxTpm > 0 ? { tpm: Math.max(1, Math.min(limits.tpm ?? maxTpm, maxTpm)) } : {}),
    };
  }
}

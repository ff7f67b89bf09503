import type { Clock } from '../../clock';
import type { ClusterStarts } from './redis-limiter-options';
import { readAnnouncement } from './start-reply';

/**
 * What the cluster's shared state looked like at the newest news of it: a reply, a heartbeat or an
 * announcement on the load channel (observedAt on this process's clock).
 */
export interface ClusterLoad {
  active: number;
  startsLastMinute: number;
  tokensLastMinute: number;
  observedAt: number;
  /** The Redis time of that state (ms, to the µs): news from different connections is ordered by it. */
  redisAt?: number;
  /**
   * The window's starts by when they are known to have happened (this process's clock), from the
   * last heartbeat; startsLastMinute may be newer and larger (see FailSafeLimiter).
   */
  recentStarts?: Array<{ at: number; count: number }>;
}

type Figures = Pick<ClusterLoad, 'active' | 'startsLastMinute' | 'tokensLastMinute'>;

/**
 * This instance's picture of the shared window, kept from three sources that arrive on different
 * connections and out of order — tryStart's replies, the registry's heartbeats and the load channel
 * (every start, release and hand-over, tryStart-7.lua) — by the Redis time each one carries. What the
 * fail-safe holds for the other instances when Redis is lost is read from here.
 */
export class ClusterLoadView {
  private load: ClusterLoad = { active: 0, startsLastMinute: 0, tokensLastMinute: 0, observedAt: -Infinity };
  private redisAt = -Infinity;

  constructor(private readonly clock: Clock) {}

  current(): ClusterLoad {
    return this.load;
  }

  /**
   * Keeps the newest state by Redis time, to the microsecond (the scripts' stamps): thousands of
   * scripts run in one millisecond, and a release or a settle right after a start must not lose to
   * it. News of the very same stamp (never seen: a script takes microseconds) keeps the larger
   * count, since an overstated count only makes the fail-safe hold more.
   */
  note(redisAt: number, figures: Figures, observedAt = this.clock.now()): void {
    if (redisAt < this.redisAt) return;
    const tie = redisAt === this.redisAt;
    const pick = (known: number, news: number) => (tie ? Math.max(known, news) : news);
    this.redisAt = redisAt;
    this.load = {
      active: pick(this.load.active, figures.active),
      startsLastMinute: pick(this.load.startsLastMinute, figures.startsLastMinute),
      tokensLastMinute: pick(this.load.tokensLastMinute, figures.tokensLastMinute),
      observedAt,
      redisAt,
      recentStarts: this.load.recentStarts,
    };
  }

  /** One announcement on the load channel (start-reply.ts); answers the starts it tells of, if any. */
  announced(message: string): ClusterStarts | undefined {
    const news = readAnnouncement(message);
    if (!news) return undefined;
    this.note(news.redisAt, {
      active: news.active,
      startsLastMinute: news.startsLastMinute ?? this.load.startsLastMinute,
      tokensLastMinute: this.load.tokensLastMinute,
    });
    return news.starts;
  }

  /** A heartbeat's figures (or a test's, without a Redis time: then ordered by arrival). */
  observe(load: Omit<ClusterLoad, 'observedAt'>, observedAt = this.clock.now()): void {
    // The start buckets come only with heartbeats: kept even when an announcement is newer.
    if (load.recentStarts) this.load = { ...this.load, recentStarts: load.recentStarts };
    if (load.redisAt !== undefined) {
      this.note(load.redisAt, load, observedAt);
      return;
    }
    if (observedAt < this.load.observedAt) return;
    this.load = { ...this.load, ...load, observedAt };
  }
}

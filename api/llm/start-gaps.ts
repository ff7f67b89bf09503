import type { Clock } from '../clock';
import { fresh, keep, MIN_SAMPLES, quantile, type TimedSample } from './recent-samples';

interface EndpointStarts {
  gaps: TimedSample[];
  /** The last start after which calls still waited; undefined when none did. */
  lastAt?: number;
  /** The cluster's starts are heard (clusterStarted): this instance's own then add nothing. */
  cluster?: boolean;
  /** This instance's starts since the cluster's last was heard. */
  unheardStarts: number;
}

/**
 * **Start gaps**, for admission's late starts (run-ledger.ts, docs/ARCHITECTURE.md "Admission"): at
 * each endpoint, the time between two starts while calls waited — how long a call at the very front
 * of the line waits for the next start, whatever binds (RPM spread, concurrency and the calls
 * holding it, a hold). In a cluster a late call is at the front of the one order of every instance
 * and takes the cluster's next start, so the gaps are measured between the cluster's starts (every
 * instance hears each one on the load channel, stamped with Redis's time), not this instance's own,
 * which come N times further apart. We tried shorter bounds (the first class's waits, late calls'
 * own waits) and they let late chats start that a few long calls holding the only slot then made
 * run out of time.
 */
export class StartGaps {
  private readonly endpoints = new Map<string, EndpointStarts>();
  /** quantileMs's answers at `answersCachedAt` (asked for every waiting chat in a deadline pass). */
  private readonly answers = new Map<number, number | undefined>();
  private answersCachedAt = Number.NaN;

  constructor(
    private readonly options: {
      clock: Pick<Clock, 'now'>;
      /** How old a gap may be and still speak for the queue now, ms (about a chat deadline). */
      maxAgeMs: number;
    },
  ) {}

  /**
   * The `fraction` quantile of the gap between two starts while calls waited, the largest over the
   * endpoints (a late chat may call any of them): how long a call at the front waits for the next
   * start. Undefined until an endpoint measured MIN_SAMPLES.
   */
  quantileMs(fraction: number): number | undefined {
    const now = this.options.clock.now();
    if (now !== this.answersCachedAt) {
      this.answers.clear();
      this.answersCachedAt = now;
    }
    if (this.answers.has(fraction)) return this.answers.get(fraction);
    const answer = this.largestOverEndpoints(now, (gaps) => quantile(gaps, fraction));
    this.answers.set(fraction, answer);
    return answer;
  }

  /**
   * The mean gap between two starts while calls waited, the largest over the endpoints: n calls
   * ahead of a call take about n times this to start. The mean, not the median: starts often come
   * in batches (a spreading sub-window reopening, several grants in one answer), whose gaps of 0
   * make the median 0 though the calls still start only as fast as the quota allows. Undefined
   * until an endpoint measured MIN_SAMPLES.
   */
  meanMs(): number | undefined {
    return this.largestOverEndpoints(this.options.clock.now(), (gaps) => {
      let sum = 0;
      for (const gap of gaps) sum += gap.ms;
      return sum / gaps.length;
    });
  }

  /**
   * `statistic` of each endpoint's fresh start gaps, the largest (a late chat may call any of
   * them); undefined until an endpoint measured MIN_SAMPLES.
   */
  private largestOverEndpoints(now: number, statistic: (gaps: TimedSample[]) => number): number | undefined {
    let largest: number | undefined;
    for (const starts of this.endpoints.values()) {
      const gaps = fresh(starts.gaps, now, this.options.maxAgeMs);
      if (gaps.length >= MIN_SAMPLES) largest = Math.max(largest ?? 0, statistic(gaps));
    }
    return largest;
  }

  /**
   * `count` calls of the cluster's started at `endpoint` at `redisAt` (Redis time, ms: every
   * instance's starts on one clock), calls still `waiting` after them anywhere. From the first one
   * on, the endpoint's gaps are the cluster's.
   */
  clusterStarted(endpoint: string, redisAt: number, count: number, waiting: boolean): void {
    const starts = this.endpointStarts(endpoint);
    starts.unheardStarts = 0;
    if (!starts.cluster) this.measureFrom(starts, 'cluster');
    if (starts.lastAt !== undefined && redisAt < starts.lastAt) return;
    const now = this.options.clock.now();
    // A batch's starts came together: after the first, no gap (as this instance's own batches).
    if (starts.lastAt !== undefined) keep(starts.gaps, { at: now, ms: redisAt - starts.lastAt });
    for (let more = 1; more < count; more++) keep(starts.gaps, { at: now, ms: 0 });
    this.answers.clear();
    starts.lastAt = waiting ? redisAt : undefined;
  }

  /**
   * A start at `endpoint`: the gap since its previous start counts only when calls were waiting
   * through it (an idle gap says nothing about how soon a waiting call starts).
   */
  started(endpoint: string, othersWaiting: boolean): void {
    const now = this.options.clock.now();
    const starts = this.endpointStarts(endpoint);
    if (starts.cluster) {
      // Its own starts are announced too: this many unheard, Redis is gone (the fail-safe starts
      // calls alone), and this instance measures its own starts again until the cluster's return.
      if (++starts.unheardStarts <= MIN_SAMPLES) return;
      this.measureFrom(starts, 'own');
    }
    if (starts.lastAt !== undefined) {
      keep(starts.gaps, { at: now, ms: now - starts.lastAt });
      this.answers.clear();
    }
    starts.lastAt = othersWaiting ? now : undefined;
  }

  /** The endpoint's gaps come from now on from the cluster's starts or this instance's own, afresh. */
  private measureFrom(starts: EndpointStarts, source: 'cluster' | 'own'): void {
    starts.cluster = source === 'cluster';
    starts.gaps.length = 0;
    starts.lastAt = undefined;
    this.answers.clear();
  }

  private endpointStarts(endpoint: string): EndpointStarts {
    let starts = this.endpoints.get(endpoint);
    if (!starts) {
      starts = { gaps: [], unheardStarts: 0 };
      this.endpoints.set(endpoint, starts);
    }
    return starts;
  }
}

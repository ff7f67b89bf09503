import type { Clock } from '../clock';
import { AppError } from '../errors';
import type { BreakerGate } from './breaker-gate';
import { giveBack, type Limiter, type Permit } from './limiter';
import type { QueueEntry as Entry, QueueLanes } from './queue-lanes';
import type { StartPacer } from './start-pacer';
import { classifyLimiterBlock, type WaitReason } from './wait-reasons';
import type { WakeTimer } from './wake-timer';

/**
 * The most starts asked of the limiter in one answer. It bounds how far one instance's calls may
 * run ahead of an earlier call waiting on another instance (the shared order is checked per ask).
 */
const MAX_STARTS_PER_ASK = 16;

/** What a dispatch pass needs of its request queue (request-queue.ts). */
export interface DispatchQueue {
  readonly lanes: QueueLanes;
  /** Calls waiting in the lanes (parked ones are not). */
  waiting(): number;
  isPaused(): boolean;
  /** `entry` got its slot on `permit`. */
  activate(entry: Entry, permit: Permit): void;
  /** Takes a waiting call out with an error. */
  drop(entry: Entry, error: AppError): void;
  /** Runs dispatch again (a permit went back to the limiter). */
  pump(): void;
}

export interface QueueDispatchOptions {
  clock: Clock;
  limiter: Limiter;
  breaker: BreakerGate;
  pacer: StartPacer;
  /** The one timer a blocked dispatch waits on. */
  wakeTimer: WakeTimer;
  /** As RequestQueueOptions: the least time a call must have left to be started. */
  minDispatchBudgetMs?: () => number;
  /** As RequestQueueOptions: a permit could not be given back. */
  onLimiterError?: (error: unknown) => void;
  queue: DispatchQueue;
}

/**
 * The request queue's dispatch pass: which waiting calls get a provider slot now. The breaker is
 * read before each permit (closed passes, open fails every queued call, half-open lets one
 * through); a call below every agent's class starts only at its paced time; the limiter is asked
 * for as many starts as calls wait at the head (one round trip fills every free slot), and the
 * permits go to the calls at the head when its answer comes.
 */
export class QueueDispatch {
  /** Why the last pass stopped with calls waiting (null: it did not). */
  blockedBy: WaitReason | null = null;
  private readonly queue: DispatchQueue;

  constructor(private readonly options: QueueDispatchOptions) {
    this.queue = options.queue;
  }

  /**
   * One pass: asks the limiter for starts for the calls at the head, in the lanes' order, until
   * none waits or something holds the next one (a pause, the breaker, a paced start, the limits:
   * `blockedBy` then says which).
   */
  async pass(): Promise<void> {
    this.blockedBy = null;
    while (this.queue.waiting() > 0) {
      // The breaker comes before the permit: a call that would not reach the provider takes no slot
      // and records no start in the rolling window.
      if (this.options.breaker.isOpen) {
        for (const entry of this.queue.lanes.entries())
          this.queue.drop(entry, this.options.breaker.openError());
        return;
      }
      if (this.queue.isPaused() || this.options.breaker.waitsOnProbe) {
        this.blockedBy = this.queue.isPaused() ? 'paused' : 'breaker_probe';
        return;
      }
      const { entry, orderKey } = this.queue.lanes.next();
      if (this.droppedTooLate(entry)) continue;
      // A call below every agent's class starts only at its paced time (start-pacer.ts); nothing
      // ranked above it waits, so dispatch can stop until then.
      if (!this.queue.lanes.holdsChatsBack(entry.request.agentType)) {
        const pacedAt = this.options.pacer.pacedStartAt(this.options.limiter.snapshot());
        if (pacedAt > this.options.clock.now()) return this.options.wakeTimer.armAt(pacedAt);
      }
      const asked = this.startsToAsk(entry);
      const { permits, retryAt } = await this.options.limiter.tryStartMany(
        entry.request.estimatedTokens,
        orderKey,
        asked,
      );
      // The answer took a turn of the event loop: the calls then at the head get the permits.
      this.handOut(permits);
      if (permits.length < asked) {
        this.blockedBy = classifyLimiterBlock(
          this.options.limiter.snapshot(),
          entry.request.estimatedTokens,
          this.options.clock.now(),
        );
        if (retryAt !== null) this.options.wakeTimer.armAt(retryAt);
        return;
      }
    }
  }

  /**
   * How many starts to ask the limiter for at once: the calls waiting at the head, so that a
   * limiter behind a round trip (Redis) fills every free slot in one answer instead of one slot per
   * round trip. One while the breaker is half-open (its single probe) or for a paced call.
   */
  private startsToAsk(head: Entry): number {
    if (this.options.breaker.isHalfOpen || !this.queue.lanes.holdsChatsBack(head.request.agentType)) return 1;
    return Math.max(1, Math.min(this.queue.waiting(), MAX_STARTS_PER_ASK));
  }

  /**
   * Gives the permits to the calls at the head, in order; a permit nobody can take now (the call
   * left, the queue paused, the breaker opened, a paced call, a call whose token estimate exceeds
   * the permit's reservation) goes back to the limiter at once.
   */
  private handOut(permits: Permit[]): void {
    const tokensLimited = this.options.limiter.snapshot().configured.tpm > 0;
    let index = 0;
    while (index < permits.length && this.queue.waiting() > 0) {
      if (this.queue.isPaused() || this.options.breaker.isOpen || this.options.breaker.waitsOnProbe) break;
      const { entry } = this.queue.lanes.next();
      if (this.droppedTooLate(entry)) continue;
      const permit = permits[index];
      if (index > 0 && !this.queue.lanes.holdsChatsBack(entry.request.agentType)) break;
      if (tokensLimited && entry.request.estimatedTokens > permit.estimatedTokens) break;
      this.queue.activate(entry, permit);
      index++;
    }
    for (const unused of permits.slice(index)) this.afterRelease(giveBack(this.options.limiter, unused));
  }

  /** A slot went back (or failed to): the next call may start. */
  private afterRelease(released: Promise<void>): void {
    released.then(
      () => this.queue.pump(),
      (error: unknown) => {
        this.options.onLimiterError?.(error);
        this.queue.pump();
      },
    );
  }

  /**
   * A call that can no longer finish before its deadline is not started: it would spend an RPM
   * start and then time out in flight, which is our queue's fault, not the provider's.
   */
  private droppedTooLate(entry: Entry): boolean {
    if (entry.request.deadline - this.options.clock.now() >= (this.options.minDispatchBudgetMs?.() ?? 0))
      return false;
    this.queue.drop(
      entry,
      new AppError('queue_timeout', 'The LLM call could not start in time to finish before its deadline'),
    );
    return true;
  }
}

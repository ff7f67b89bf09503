import type { Clock, TimerHandle } from '../clock';
import type { AppError } from '../errors';
import type { ChatAdmission, StartDecision } from '../llm/admission';
import { ABANDON_SLICE } from './run-graces';

/** A chat waiting in the line, as the deadline check needs it. */
export interface WaitingDeadline {
  /** The chat's deadline (clock time); undefined: none. */
  readonly deadline: number | undefined;
}

export interface WaitingDeadlinesOptions<E extends WaitingDeadline> {
  clock: Clock;
  /** Says which waiting chats cannot start in time (api/llm/admission.ts). */
  admission: Pick<ChatAdmission, 'checkWaiting' | 'lastChanceStart'>;
  /** The waiting line in arrival order (the limiter's; read here, never changed). */
  line: ReadonlyMap<string, E>;
  /** How often waiting chats are checked against their deadlines, ms. */
  checkMs: number;
  /** Starts the head if its last chance to start has come (admission.lastChanceStart). */
  startDue(): void;
  /** Ends a waiting chat with `refusal`; the limiter takes it out of its line. */
  refuse(entry: E, refusal: AppError): void;
  /** Places changed after a pass that refused someone: the line's news tells the rest. */
  moved(): void;
}

/**
 * The periodic check of the chat line's waiting chats against their deadlines: the head starts
 * without room if this is its last chance to finish in time, and a chat that admission measured
 * cannot start in time is refused while it waits (an `overloaded` event), so it can retry
 * elsewhere or later instead of waiting out its deadline. One timer for the
 * whole line, armed only while chats wait; the line (who waits, who starts) is SseLimiter's.
 */
export class WaitingDeadlines<E extends WaitingDeadline> {
  private timer?: TimerHandle;
  private closed = false;

  constructor(private readonly options: WaitingDeadlinesOptions<E>) {}

  /** The line changed: keep the check armed while chats wait. */
  lineChanged(): void {
    if (this.options.line.size > 0 && !this.timer && !this.closed) {
      this.timer = this.options.clock.setTimeout(this.check, this.options.checkMs);
    }
  }

  /**
   * How `head` starts if the provider has no room: late, if this is its last chance to finish in
   * time (admission.lastChanceStart) — this check looks at it again within checkMs; undefined, it
   * keeps waiting.
   */
  lastChance(head: E, running: number): StartDecision | undefined {
    const now = this.options.clock.now();
    return this.options.admission.lastChanceStart(running, head.deadline, now, now + this.options.checkMs);
  }

  /** No more checks (shutdown). */
  close(): void {
    this.closed = true;
    if (this.timer) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /**
   * Ends the waiting chats that admission measured cannot start in time, ABANDON_SLICE per pass:
   * told now, they can retry elsewhere or later instead of waiting out their deadline.
   */
  private readonly check = (): void => {
    this.timer = undefined;
    if (this.closed) return;
    // A head at its last chance starts before anyone is judged hopeless.
    this.options.startDue();
    const { line, clock } = this.options;
    const now = clock.now();
    const late: Array<[E, AppError]> = [];
    let position = 0;
    for (const entry of line.values()) {
      position++;
      const refusal = this.options.admission.checkWaiting(position, entry.deadline, now);
      if (!refusal) continue;
      late.push([entry, refusal]);
      // Those behind move up by one when it leaves.
      position--;
      if (late.length >= ABANDON_SLICE) break;
    }
    for (const [entry, refusal] of late) this.options.refuse(entry, refusal);
    if (late.length > 0) this.options.moved();
    // Refusing reported the line's change, which may have armed the next check already: one timer.
    if (late.length >= ABANDON_SLICE && line.size > 0) {
      if (this.timer) clock.clearTimeout(this.timer);
      this.timer = clock.setTimeout(this.check, 0);
    } else {
      this.lineChanged();
    }
  };
}

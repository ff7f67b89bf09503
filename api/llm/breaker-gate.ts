import type { AppError } from '../errors';
import type { QueueEntry } from './queue-lanes';
import type { BreakerReading } from './request-queue-types';

/**
 * The queue's one view of the provider's circuit breaker: it reads the breaker's state and keeps
 * the half-open probe, nothing more (the breaker itself lives in the call path). Closed passes;
 * open fails the waiting calls and refuses new ones; half-open lets one call through, the probe,
 * and the others wait for its verdict.
 */
export class BreakerGate {
  /** The call dispatched while the breaker was half-open, until its slot is back. */
  private probe?: QueueEntry;

  constructor(private readonly breaker?: BreakerReading) {}

  get isOpen(): boolean {
    return this.breaker?.state === 'open';
  }

  get isHalfOpen(): boolean {
    return this.breaker?.state === 'half_open';
  }

  /** Half-open, and the one call let through is still out: the others wait for its verdict. */
  get waitsOnProbe(): boolean {
    return this.isHalfOpen && this.probe?.state === 'active';
  }

  /** The error an open breaker fails a call with. */
  openError(): AppError {
    return this.breaker!.openError();
  }

  /** A call was started: while half-open it is the probe. */
  started(entry: QueueEntry): void {
    if (this.isHalfOpen) this.probe = entry;
  }

  /** A started call gave its slot back. */
  ended(entry: QueueEntry): void {
    if (this.probe === entry) this.probe = undefined;
  }
}

import type { Clock } from '../../clock';
import type { WireError } from './sim-errors';

const WINDOW_MS = 60_000;

/** The provider's two limits over a rolling window; `tryStart` consumes a slot or says why not. */
export class SimQuota {
  private starts: number[] = [];
  private head = 0;
  private inFlight = 0;

  constructor(
    private readonly rpm: number,
    private readonly concurrency: number,
    private readonly clock: Clock,
  ) {}

  tryStart(): { retryAfterMs: number; body: WireError } | undefined {
    const now = this.clock.now();
    while (this.head < this.starts.length && this.starts[this.head] <= now - WINDOW_MS) this.head++;
    if (this.head > 1024 && this.head * 2 > this.starts.length) {
      this.starts = this.starts.slice(this.head);
      this.head = 0;
    }
    if (this.inFlight >= this.concurrency) {
      return {
        retryAfterMs: 1000,
        body: {
          code: 'RateLimitExceeded.EndpointConcurrencyExceeded',
          message: `Too many concurrent requests: ${this.inFlight} in flight (limit ${this.concurrency}). Please retry later.`,
          type: 'TooManyRequests',
        },
      };
    }
    if (this.starts.length - this.head >= this.rpm) {
      return {
        retryAfterMs: this.starts[this.head] + WINDOW_MS - now,
        body: {
          code: 'RateLimitExceeded.EndpointRPMExceeded',
          message: `The request has exceeded the RPM limit (${this.rpm}) of the endpoint. Please retry later.`,
          type: 'TooManyRequests',
        },
      };
    }
    this.starts.push(now);
    this.inFlight++;
    return undefined;
  }

  finish(): void {
    this.inFlight--;
  }

  resetWindow(): void {
    this.starts = [];
    this.head = 0;
  }
}

import { ToolError } from './tool-errors';

interface Flight<T> {
  controller: AbortController;
  promise: Promise<T>;
  callers: number;
}

/**
 * Identical concurrent calls share one execution. The shared work gets its own signal, aborted
 * only when every caller has gone: one impatient caller must not cancel the others' result.
 */
export class SingleFlight<T> {
  private readonly flights = new Map<string, Flight<T>>();

  /** Runs `work` for `key`, or joins the execution already in flight for it. */
  run(key: string, signal: AbortSignal, work: (sharedSignal: AbortSignal) => Promise<T>): Promise<T> {
    if (signal.aborted) return Promise.reject(new ToolError('cancelled', 'The call was cancelled'));
    let flight = this.flights.get(key);
    // A flight every caller has left is being aborted: a newcomer must start afresh, not join it.
    if (flight?.controller.signal.aborted) {
      this.flights.delete(key);
      flight = undefined;
    }
    if (!flight) {
      const controller = new AbortController();
      const created: Flight<T> = { controller, callers: 0, promise: Promise.resolve() as Promise<T> };
      created.promise = (async () => {
        try {
          return await work(controller.signal);
        } finally {
          if (this.flights.get(key) === created) this.flights.delete(key);
        }
      })();
      // The flight's own rejection is observed through the callers; this keeps it from being "unhandled".
      created.promise.catch(() => undefined);
      this.flights.set(key, created);
      flight = created;
    }
    return this.follow(flight, signal);
  }

  /** Executions in flight now. */
  get size(): number {
    return this.flights.size;
  }

  private follow(flight: Flight<T>, signal: AbortSignal): Promise<T> {
    flight.callers++;
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const onAbort = () => {
        if (settled) return;
        settled = true;
        flight.callers--;
        if (flight.callers === 0)
          flight.controller.abort(new ToolError('cancelled', 'Every caller went away'));
        reject(new ToolError('cancelled', 'The call was cancelled'));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      flight.promise.then(
        (value) => {
          if (settled) return;
          settled = true;
          signal.removeEventListener('abort', onAbort);
          resolve(value);
        },
        (error: unknown) => {
          if (settled) return;
          settled = true;
          signal.removeEventListener('abort', onAbort);
          reject(error);
        },
      );
    });
  }
}

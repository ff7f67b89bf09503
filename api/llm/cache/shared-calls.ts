import { abortReason } from '../../errors';

interface Follower<T, D> {
  onDelta?: (piece: D) => void;
  resolve(value: T): void;
  reject(error: unknown): void;
}

interface Flight<T, D> {
  controller: AbortController;
  /** Every delta so far: a caller that joins late sees the text from its start. */
  deltas: D[];
  followers: Set<Follower<T, D>>;
}

/**
 * Identical LLM calls in flight share one provider call. Every caller follows the shared call's
 * deltas as they stream and receives its result. The shared call has its own signal, aborted
 * only when every caller has gone: the first caller leaving (its client disconnected) detaches it
 * alone, and the others still get the answer. `D` is what streams: text, or pieces that say what
 * they are (the answer's text or a thinking model's reasoning).
 */
export class SharedCalls<T, D = string> {
  private readonly flights = new Map<string, Flight<T, D>>();

  /** Whether a call for `key` is in flight now (a newcomer would join it). */
  has(key: string): boolean {
    const flight = this.flights.get(key);
    return flight !== undefined && !flight.controller.signal.aborted;
  }

  /**
   * Joins the call in flight for `key`, or starts it with `work`. `joined` says which: a joined
   * call costs the provider nothing.
   */
  run(
    key: string,
    signal: AbortSignal,
    onDelta: ((piece: D) => void) | undefined,
    work: (sharedSignal: AbortSignal, onDelta: (piece: D) => void) => Promise<T>,
  ): { joined: boolean; result: Promise<T> } {
    let flight = this.flights.get(key);
    // A flight every caller has left is being aborted: a newcomer starts afresh.
    if (flight?.controller.signal.aborted) {
      this.flights.delete(key);
      flight = undefined;
    }
    const joined = flight !== undefined;
    if (!flight) flight = this.start(key, work);
    return { joined, result: this.follow(flight, signal, onDelta) };
  }

  /** Shared calls in flight now. */
  get size(): number {
    return this.flights.size;
  }

  private start(
    key: string,
    work: (sharedSignal: AbortSignal, onDelta: (piece: D) => void) => Promise<T>,
  ): Flight<T, D> {
    const flight: Flight<T, D> = { controller: new AbortController(), deltas: [], followers: new Set() };
    this.flights.set(key, flight);
    const fanOut = (piece: D) => {
      flight.deltas.push(piece);
      for (const follower of [...flight.followers]) {
        try {
          follower.onDelta?.(piece);
        } catch (error) {
          // One caller's broken listener fails that caller, not the call the others share.
          follower.reject(error);
        }
      }
    };
    // Started on the next microtask, once the first follower is attached.
    void Promise.resolve()
      .then(() => work(flight.controller.signal, fanOut))
      .then(
        (value) => {
          this.end(key, flight);
          for (const follower of [...flight.followers]) follower.resolve(value);
        },
        (error: unknown) => {
          this.end(key, flight);
          for (const follower of [...flight.followers]) follower.reject(error);
        },
      );
    return flight;
  }

  private end(key: string, flight: Flight<T, D>): void {
    if (this.flights.get(key) === flight) this.flights.delete(key);
  }

  private follow(flight: Flight<T, D>, signal: AbortSignal, onDelta?: (piece: D) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const follower: Follower<T, D> = {
        onDelta,
        resolve: (value) => {
          detach();
          resolve(value);
        },
        reject: (error) => {
          detach();
          reject(error);
        },
      };
      const onAbort = () => {
        detach();
        // The last caller gone: nobody wants the answer, so the provider call stops too.
        if (flight.followers.size === 0) flight.controller.abort(abortReason(signal));
        reject(abortReason(signal));
      };
      const detach = () => {
        flight.followers.delete(follower);
        signal.removeEventListener('abort', onAbort);
      };
      if (signal.aborted) {
        if (flight.followers.size === 0) flight.controller.abort(abortReason(signal));
        reject(abortReason(signal));
        return;
      }
      flight.followers.add(follower);
      signal.addEventListener('abort', onAbort, { once: true });
      for (const piece of flight.deltas) onDelta?.(piece);
    });
  }
}

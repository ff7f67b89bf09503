import { now } from './chat-client';

/**
 * A closed loop without think time: N clients, each sends its next request the moment the last one
 * ended, for a fixed time. What the `cpu` scenario drives every server with, so that each is kept
 * as busy as 50 clients make it and the CPU it spends is divided by the work it did.
 */

export interface ClosedLoopCounters {
  completed: number;
  failed: number;
  /** Sum of completed requests' durations, ms. */
  latencyMs: number;
}

export interface ClosedLoop {
  /** Live counters since the start (read them at the window's edges). */
  counters: ClosedLoopCounters;
  /** Stops sending; resolves once every client's last request has ended. */
  stop(): Promise<void>;
}

/** `request(client)` resolves true on success; a rejection counts as a failure. */
export function startClosedLoop(clients: number, request: (client: number) => Promise<boolean>): ClosedLoop {
  const counters: ClosedLoopCounters = { completed: 0, failed: 0, latencyMs: 0 };
  let stopped = false;
  const client = async (index: number) => {
    while (!stopped) {
      const startedAt = now();
      let ok = false;
      try {
        ok = await request(index);
      } catch {
        ok = false;
      }
      if (ok) {
        counters.completed++;
        counters.latencyMs += now() - startedAt;
      } else {
        counters.failed++;
        // A server that fails at once must not turn the loop into a busy spin.
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  };
  const running = Promise.all(Array.from({ length: clients }, (_, index) => client(index)));
  return {
    counters,
    stop: async () => {
      stopped = true;
      await running;
    },
  };
}

import type { FailSafePermit, SharedLimiter } from './fail-safe-types';

/**
 * The calls this instance started alone while Redis was lost (the last window's), and their
 * hand-over to Redis when it answers again (adopt-5.lua), so the shared windows count them.
 */
export class OutageStarts {
  private starts: FailSafePermit[] = [];

  record(permit: FailSafePermit): void {
    this.starts.push(permit);
  }

  /** Starts not handed over yet (made since the last hand-over began). */
  get size(): number {
    return this.starts.length;
  }

  /**
   * Hands the outage's starts and in-flight calls to Redis, and removes the leases of the releases
   * it missed. A call still running is claimed (permitFor) before its lease is written: should it
   * end while the adoption is on its way, its release follows the adoption on the connection and
   * removes the lease, instead of a lease renewed for ever for a call long gone.
   */
  async handOver(shared: SharedLimiter, now: number): Promise<void> {
    const windowMs = shared.windowMs;
    // Starts made while this runs stay for the next hand-over.
    const handed = this.starts;
    this.starts = [];
    try {
      await shared.renewLeases();
      const recent = handed.filter((permit) => permit.startedAt > now - windowMs);
      const entries = recent.map((permit) => {
        const running = !permit.released;
        if (running) permit.shared = shared.permitFor(permit.id, permit.startedAt, permit.estimatedTokens);
        return {
          id: permit.id,
          startedAt: permit.startedAt,
          tokens: shared.snapshot().configured.tpm > 0 ? permit.estimatedTokens : 0,
          running,
        };
      });
      await shared.adopt(entries);
    } catch (error) {
      this.starts = [...handed, ...this.starts];
      throw error;
    }
    await shared.reconcile();
  }
}

/**
 * sim-llm's fault injection, for the fault suite and demos: what a real provider does on a bad
 * day. Percentages are drawn from a seeded generator, so a run with the same flags and seed fails
 * the same calls (tests stay deterministic).
 */
export interface SimFaultOptions {
  /** Calls answered with a 5xx (after passing the quota), in percent. */
  failPercent?: number;
  /** Streamed answers cut (connection destroyed) after this many content chunks; 0 = never. */
  cutAfterChunks?: number;
  /** Delay before the response's first byte, ms. */
  firstByteDelayMs?: number;
  /** Calls accepted and then never answered, in percent (until the client gives up). */
  hangPercent?: number;
  /** Calls refused with 429 + Retry-After whatever the quota says (a 429 storm), in percent. */
  storm429Percent?: number;
  /** The Retry-After the storm's 429s carry, seconds. */
  retryAfterSeconds?: number;
  /** Seed of the generator behind the percentages. */
  seed?: number;
}

export const SIM_FAULT_DEFAULTS = {
  failPercent: 0,
  cutAfterChunks: 0,
  firstByteDelayMs: 0,
  hangPercent: 0,
  storm429Percent: 0,
  retryAfterSeconds: 1,
  seed: 1,
};

export interface SimFaultCounters {
  injected5xx: number;
  injected429: number;
  hung: number;
  cut: number;
}

export class SimFaults {
  readonly settings: Required<SimFaultOptions>;
  readonly counters: SimFaultCounters = { injected5xx: 0, injected429: 0, hung: 0, cut: 0 };
  private state: number;

  constructor(options: SimFaultOptions = {}) {
    this.settings = { ...SIM_FAULT_DEFAULTS, ...options };
    this.state = this.settings.seed >>> 0 || 1;
  }

  /** True with `percent` probability (mulberry32: tiny, seeded, good enough for test traffic). */
  roll(percent: number): boolean {
    if (percent <= 0) return false;
    if (percent >= 100) return true;
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let value = this.state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296 < percent / 100;
  }
}

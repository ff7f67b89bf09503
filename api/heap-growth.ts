import v8 from 'node:v8';

/**
 * Bounds how far V8 lets the old generation grow past what the last full (mark-compact) GC kept
 * before it starts the next one (V8's `--heap-growing-percent`, read at every full GC).
 *
 * Left to itself, V8 picks the factor from the GC's speed against the allocation rate, up to 4×
 * on a machine with a large heap limit. With 10,000 streams opening at ~160 a second, one full GC
 * kept 73 MB and the next came only when the heap had reached ~300 MB: most of it garbage, paid
 * for in RSS at the peak (sse-capacity benchmark: 431–443 MB; with 50 %, 368 MB). A full GC's
 * marking runs concurrently and in small steps, so more of them cost CPU, not stalls.
 *
 * `setFlags` is v8.setFlagsFromString; tests pass their own. Returns whether anything was set.
 */
export function applyHeapGrowth(
  percent: number,
  setFlags: (flags: string) => void = (flags) => v8.setFlagsFromString(flags),
): boolean {
  if (!Number.isInteger(percent) || percent <= 0) return false;
  setFlags(`--heap-growing-percent=${percent}`);
  return true;
}

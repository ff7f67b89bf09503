/**
 * How long a provider asked us to wait, from its response headers. Understands every form seen in
 * the wild (docs/ARCHITECTURE.md §7): `retry-after-ms` (milliseconds, OpenAI/Azure), `retry-after` as seconds,
 * and `retry-after` as an HTTP date. `retry-after-ms` wins when both are present (it is finer).
 */

/** Fetch `Headers`, or a plain record as Node's `IncomingHttpHeaders`. */
export type HeaderSource =
  Headers | Record<string, string | string[] | number | undefined> | null | undefined;

/** Milliseconds to wait (never negative), or undefined when no usable header is present. */
export function parseRetryAfter(headers: HeaderSource, now: number): number | undefined {
  const milliseconds = parseNumber(readHeader(headers, 'retry-after-ms'));
  if (milliseconds !== undefined) return Math.round(milliseconds);

  const value = readHeader(headers, 'retry-after');
  if (value === undefined) return undefined;
  const seconds = parseNumber(value);
  if (seconds !== undefined) return Math.round(seconds * 1000);
  // An HTTP date must name a weekday or month; Date.parse alone would accept odd strings like "1 2".
  if (!/[a-z]{3}/i.test(value)) return undefined;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function parseNumber(value: string | undefined): number | undefined {
  if (value === undefined || !/^\s*\d+(?:\.\d+)?\s*$/.test(value)) return undefined;
  const number = Number(value);
  return Number.isFinite(number) ? number : undefined;
}

function readHeader(headers: HeaderSource, name: string): string | undefined {
  if (!headers) return undefined;
  let value: unknown;
  if (typeof (headers as Headers).get === 'function') {
    value = (headers as Headers).get(name);
  } else {
    const record = headers as Record<string, unknown>;
    const key = Object.keys(record).find((candidate) => candidate.toLowerCase() === name);
    value = key === undefined ? undefined : record[key];
  }
  if (Array.isArray(value)) value = value[0];
  if (typeof value === 'number') return String(value);
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
}

import { parseRetryAfter } from '../../api/llm/retry-after';

const NOW = Date.parse('2025-03-10T12:00:00Z');

describe('parseRetryAfter', () => {
  it('reads retry-after-ms first (it is finer than seconds)', () => {
    expect(parseRetryAfter(new Headers({ 'retry-after-ms': '1500', 'retry-after': '2' }), NOW)).toBe(1500);
    expect(parseRetryAfter(new Headers({ 'retry-after-ms': '120.4' }), NOW)).toBe(120);
  });

  it('reads retry-after as seconds, integer or decimal', () => {
    expect(parseRetryAfter(new Headers({ 'retry-after': '7' }), NOW)).toBe(7000);
    expect(parseRetryAfter(new Headers({ 'retry-after': '0.25' }), NOW)).toBe(250);
    expect(parseRetryAfter(new Headers({ 'retry-after': '0' }), NOW)).toBe(0);
  });

  it('reads retry-after as an HTTP date, relative to now, never negative', () => {
    expect(parseRetryAfter(new Headers({ 'retry-after': 'Mon, 10 Mar 2025 12:00:30 GMT' }), NOW)).toBe(
      30_000,
    );
    expect(parseRetryAfter(new Headers({ 'retry-after': 'Mon, 10 Mar 2025 11:59:00 GMT' }), NOW)).toBe(0);
  });

  it('accepts Node-style header records, with any case and array values', () => {
    expect(parseRetryAfter({ 'Retry-After': '3' }, NOW)).toBe(3000);
    expect(parseRetryAfter({ 'retry-after-ms': ['40', '50'] }, NOW)).toBe(40);
    expect(parseRetryAfter({ 'retry-after': 2 }, NOW)).toBe(2000);
  });

  it('ignores missing, empty and malformed values', () => {
    expect(parseRetryAfter(undefined, NOW)).toBeUndefined();
    expect(parseRetryAfter(null, NOW)).toBeUndefined();
    expect(parseRetryAfter(new Headers(), NOW)).toBeUndefined();
    expect(parseRetryAfter(new Headers({ 'retry-after': '' }), NOW)).toBeUndefined();
    expect(parseRetryAfter(new Headers({ 'retry-after': '-5' }), NOW)).toBeUndefined();
    expect(parseRetryAfter(new Headers({ 'retry-after': 'soon' }), NOW)).toBeUndefined();
    expect(parseRetryAfter(new Headers({ 'retry-after': '1 2' }), NOW)).toBeUndefined();
    // A malformed retry-after-ms falls back to retry-after.
    expect(parseRetryAfter(new Headers({ 'retry-after-ms': 'abc', 'retry-after': '1' }), NOW)).toBe(1000);
  });
});

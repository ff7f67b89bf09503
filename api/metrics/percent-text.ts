/**
 * A share as the brief writes it: `"45%"`. Whole percent from 10 % up; one decimal below, so a
 * 0.4 % error rate does not read as "0%".
 */
export function percentText(percent: number): string {
  if (!Number.isFinite(percent) || percent <= 0) return '0%';
  const value = percent < 10 ? Math.round(percent * 10) / 10 : Math.round(percent);
  return `${value}%`;
}

/** `part / whole` as percentText; 0 of 0 is "0%". */
export function ratioText(part: number, whole: number): string {
  return whole <= 0 ? '0%' : percentText((part / whole) * 100);
}

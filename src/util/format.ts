/** Numbers as progress lines show them: sizes, counts and durations, independent of the locale. */

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

/**
 * An integer with thousands separators, independent of the user's locale. By hand: the first
 * `toLocaleString` of a process loads ICU's number formatting, ~20 ms of every run's start.
 */
export function count(n: number): string {
  const digits = String(Math.abs(Math.round(n)));
  let out = '';
  for (let end = digits.length; end > 0; end -= 3)
    out = `${digits.slice(Math.max(0, end - 3), end)}${out ? `,${out}` : ''}`;
  return n < 0 && Math.round(n) !== 0 ? `-${out}` : out;
}

export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

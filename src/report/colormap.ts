/**
 * Colour maps for the report. Diverging for signed values (weights: blue negative, white zero,
 * red positive — ColorBrewer RdBu, reversed so that red reads "more of this class"); sequential
 * for magnitudes (the confusion heat map — ColorBrewer Blues); a categorical palette for runs
 * (Tableau 10). ColorBrewer's schemes were designed to stay readable for common colour blindness.
 */

export type Rgb = readonly [number, number, number];

const RD_BU: readonly string[] = [
  '#2166ac',
  '#67a9cf',
  '#d1e5f0',
  '#f7f7f7',
  '#fddbc7',
  '#ef8a62',
  '#b2182b',
];
const BLUES: readonly string[] = [
  '#f7fbff',
  '#deebf7',
  '#c6dbef',
  '#9ecae1',
  '#6baed6',
  '#4292c6',
  '#2171b5',
  '#08519c',
  '#08306b',
];
export const RUN_COLOURS: readonly string[] = [
  '#4e79a7',
  '#f28e2b',
  '#e15759',
  '#76b7b2',
  '#59a14f',
  '#edc948',
  '#b07aa1',
  '#ff9da7',
  '#9c755f',
  '#bab0ac',
];

function hex(colour: string): Rgb {
  const n = Number.parseInt(colour.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** Piecewise-linear interpolation through evenly spaced stops, t in [0, 1] (clamped). */
function ramp(stops: readonly string[], t: number): Rgb {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const a = hex(stops[i]!);
  const b = hex(stops[i + 1]!);
  const f = x - i;
  return [0, 1, 2].map((k) => Math.round(a[k]! + (b[k]! - a[k]!) * f)) as unknown as Rgb;
}

/** Signed value v in [-1, 1] → blue … white … red. */
export function diverging(v: number): Rgb {
  return ramp(RD_BU, (v + 1) / 2);
}

/** Magnitude t in [0, 1] → white … dark blue. */
export function sequential(t: number): Rgb {
  return ramp(BLUES, t);
}

export function cssRgb([r, g, b]: Rgb): string {
  return `rgb(${r},${g},${b})`;
}

/** Relative luminance, to pick dark or light text over a cell. */
export function isDark([r, g, b]: Rgb): boolean {
  return 0.2126 * r + 0.7152 * g + 0.0722 * b < 128;
}

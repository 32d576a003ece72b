/**
 * Chart axes: the range a chart shows, its round tick values, their labels, and how much room the
 * labels need. Pure functions of the data, so a test can state what an axis shows.
 *
 * The value axis fits the data, not a fixed [0, 1]: a curve that spends its life between 0.88 and
 * 0.93 gets that band. What it fits is every point but those in the first tenth of each series'
 * own steps — the untrained model's step-0 evaluation (accuracy 0.1, loss 2.3) would otherwise
 * squeeze the rest of the curve into a few pixels. Points left out are still drawn, clipped to an
 * edge marker, and the caption says how many.
 */

/** About `count` round tick values covering [min, max]: steps of 1, 2 or 5 × 10^k. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!(max > min)) {
    const pad = Math.abs(min) > 0 ? Math.abs(min) * 0.1 : 1;
    return niceTicks(min - pad, max + pad, count);
  }
  const step = niceStep(min, max, count);
  // Whole multiples of the step, from the last one at or below min to the first at or above max;
  // the tolerance keeps a max that is a multiple (up to rounding) from adding one more tick.
  const from = Math.floor(min / step + 1e-9);
  const to = Math.ceil(max / step - 1e-9);
  const ticks: number[] = [];
  for (let k = from; k <= to; k++) ticks.push(roundTo(k * step, step));
  return ticks;
}

function niceStep(min: number, max: number, count: number): number {
  const raw = (max - min) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw)!;
}

/** Rounding to the step's precision keeps 0.30000000000000004 off the axis. */
function roundTo(value: number, step: number): number {
  return Number(value.toFixed(decimals(step)));
}

function decimals(step: number): number {
  return Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
}

export interface Axis {
  /** The range drawn, data edge to data edge (with a little room on the value axis). */
  min: number;
  max: number;
  /** Round values inside [min, max], each with its label. */
  ticks: { value: number; label: string }[];
}

/**
 * An axis over [lo, hi], with ticks only inside it (a chart whose data ends at step 4,690 ends
 * there, not at 5,000). `pad` widens the range by that share of it on each side.
 */
export function axis(lo: number, hi: number, pad = 0): Axis {
  let min = lo;
  let max = hi;
  if (!(max > min)) {
    const half = Math.abs(min) > 0 ? Math.abs(min) * 0.05 : 0.5;
    min -= half;
    max += half;
  } else if (pad > 0) {
    const room = (max - min) * pad;
    min -= room;
    max += room;
  }
  // Asking for seven gives 3–7 labels: a band of 0.05 at steps of 0.01, one of 0.13 at 0.02.
  const values = niceTicks(min, max, 7).filter((v) => v >= min - 1e-12 && v <= max + 1e-12);
  const step = values.length > 1 ? values[1]! - values[0]! : Math.abs(values[0] ?? 1) || 1;
  return { min, max, ticks: values.map((value) => ({ value, label: tickLabel(value, step) })) };
}

/** A tick's label: thousands separated ("30,000"), and every label of an axis with the same decimals. */
export function tickLabel(value: number, step: number): string {
  const digits = decimals(step);
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** Width in pixels of a label in the charts' 11 px sans-serif: digits are ~6.2 px, separators ~3 px. */
export function labelWidth(label: string): number {
  let w = 0;
  for (const c of label) w += /[0-9−-]/.test(c) ? 6.2 : c === ',' || c === '.' ? 3.1 : 7;
  return w;
}

/** A point of a series, for fitting the value axis. */
export interface FitPoint {
  x: number;
  y: number;
}

/** Share of each series' steps, from its first, left out when fitting the value axis. */
export const SETTLING_SHARE = 0.1;

/**
 * The value range the chart shows: every point of every series except those in the first tenth
 * of that series' own step range (measured per series, so a short run beside a long one keeps its
 * points). A series of one point, or of points at one step, counts whole.
 */
export function fitRange(series: readonly (readonly FitPoint[])[]): [number, number] | undefined {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const points of series) {
    if (points.length === 0) continue;
    let first = Number.POSITIVE_INFINITY;
    let last = Number.NEGATIVE_INFINITY;
    for (const p of points) {
      first = Math.min(first, p.x);
      last = Math.max(last, p.x);
    }
    const from = first + (last - first) * SETTLING_SHARE;
    for (const p of points) {
      if (last > first && p.x < from) continue;
      lo = Math.min(lo, p.y);
      hi = Math.max(hi, p.y);
    }
  }
  return lo <= hi ? [lo, hi] : undefined;
}

/** A tick value as an axis label: thousands grouped (30,000), small values as they are. */
export function formatTick(v: number): string {
  if (Math.abs(v) >= 1000) return v.toLocaleString('en-US');
  return String(v);
}

/**
 * A scatter chart in hand-written SVG, for a sweep's metric against one parameter. The x axis is
 * numeric (linear, or logarithmic when the values are positive and span a factor of 20 or more, as
 * a learning rate drawn log-uniformly does) or categorical (one band per value, in the order the
 * values first appear, points spread across the band so that equal values stay visible). As in
 * svg.ts, every point is an element carrying its values and a hover title.
 */

import { formatTick, niceTicks } from './axis.js';
import { escapeHtml as esc } from './escape.js';

export interface ScatterPoint {
  x: unknown;
  y: number;
  colour: string;
  title: string;
  /** Identifies the point in the page (`data-trial`). */
  key: string;
}

export interface ScatterSpec {
  id: string;
  xLabel: string;
  yLabel: string;
  points: ScatterPoint[];
  width?: number;
  height?: number;
}

const MARGIN = { top: 10, right: 14, bottom: 42, left: 56 };

export function scatterChart(spec: ScatterSpec): string {
  const width = spec.width ?? 460;
  const height = spec.height ?? 260;
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const points = spec.points.filter((p) => Number.isFinite(p.y));
  const head = `<svg class="chart scatter" data-chart="${esc(spec.id)}" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${esc(`${spec.yLabel} by ${spec.xLabel}`)}">`;
  if (points.length === 0)
    return `${head}<text x="${width / 2}" y="${height / 2}" text-anchor="middle" class="empty">no data</text></svg>`;
  const r = (n: number) => n.toFixed(1);
  const x = xAxis(
    points.map((p) => p.x),
    plotW,
  );
  const ys = points.map((p) => p.y);
  const yTicks = niceTicks(Math.min(...ys), Math.max(...ys), 4);
  const [y0, y1] = [yTicks[0]!, yTicks.at(-1)!];
  const sy = (y: number) => MARGIN.top + plotH - ((y - y0) / (y1 - y0 || 1)) * plotH;

  const parts = [head, '<g class="grid">'];
  for (const t of yTicks)
    parts.push(
      `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${r(sy(t))}" y2="${r(sy(t))}"/><text x="${MARGIN.left - 6}" y="${r(sy(t) + 4)}" text-anchor="end">${esc(formatTick(t))}</text>`,
    );
  for (const t of x.ticks)
    parts.push(
      `<line y1="${MARGIN.top}" y2="${MARGIN.top + plotH}" x1="${r(MARGIN.left + t.at)}" x2="${r(MARGIN.left + t.at)}"/><text y="${MARGIN.top + plotH + 16}" x="${r(MARGIN.left + t.at)}" text-anchor="middle">${esc(t.label)}</text>`,
    );
  parts.push('</g>');
  parts.push(
    `<text class="axis-label" x="${MARGIN.left + plotW / 2}" y="${height - 6}" text-anchor="middle">${esc(spec.xLabel)}${x.log ? ' (log scale)' : ''}</text>`,
    `<text class="axis-label" transform="translate(14 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle">${esc(spec.yLabel)}</text>`,
  );
  points.forEach((p, i) => {
    const cx = MARGIN.left + x.at(p.x, i);
    parts.push(
      `<circle class="point" cx="${r(cx)}" cy="${r(sy(p.y))}" r="4" fill="${esc(p.colour)}" fill-opacity="0.8" data-trial="${esc(p.key)}" data-y="${p.y}"><title>${esc(p.title)}</title></circle>`,
    );
  });
  parts.push('</svg>');
  return parts.join('');
}

interface XAxis {
  log: boolean;
  ticks: { at: number; label: string }[];
  /** Where value v (the i-th point) goes, from the plot's left edge. */
  at(v: unknown, i: number): number;
}

function xAxis(values: readonly unknown[], plotW: number): XAxis {
  const numeric = values.every((v) => typeof v === 'number' && Number.isFinite(v));
  const distinct = [...new Set(values.map((v) => JSON.stringify(v)))];
  if (numeric && distinct.length > 1) {
    const xs = values as number[];
    const [min, max] = [Math.min(...xs), Math.max(...xs)];
    const log = min > 0 && max / min >= 20;
    const f = log ? Math.log10 : (v: number) => v;
    const ticks = log
      ? range(Math.floor(f(min)), Math.ceil(f(max))).map((k) => ({
          v: k,
          label: formatTick(Number((10 ** k).toPrecision(1))),
        }))
      : niceTicks(min, max, 5).map((t) => ({ v: t, label: formatTick(t) }));
    const [t0, t1] = [ticks[0]!.v, ticks.at(-1)!.v];
    const sx = (v: number) => ((f(v) - t0) / (t1 - t0 || 1)) * plotW;
    return {
      log,
      ticks: ticks.map((t) => ({ at: ((t.v - t0) / (t1 - t0 || 1)) * plotW, label: t.label })),
      at: (v) => sx(v as number),
    };
  }
  // Categories: one band each; a band's points spread over its middle half, in trial order.
  const band = plotW / distinct.length;
  const seen = new Map<string, number>();
  const counts = new Map<string, number>();
  for (const v of values) counts.set(JSON.stringify(v), (counts.get(JSON.stringify(v)) ?? 0) + 1);
  return {
    log: false,
    ticks: distinct.map((d, i) => ({ at: band * (i + 0.5), label: label(JSON.parse(d)) })),
    at: (v) => {
      const key = JSON.stringify(v);
      const n = seen.get(key) ?? 0;
      seen.set(key, n + 1);
      const k = counts.get(key)!;
      const spread = k > 1 ? (n / (k - 1) - 0.5) * band * 0.5 : 0;
      return band * (distinct.indexOf(key) + 0.5) + spread;
    },
  };
}

function label(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function range(a: number, b: number): number[] {
  return Array.from({ length: b - a + 1 }, (_, i) => a + i);
}

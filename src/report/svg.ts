/**
 * Hand-written SVG for the report: a line chart with several series and a heat map. Plain markup,
 * no script, so the page needs nothing from the network and works where scripts are blocked.
 * Every data point is an element carrying its values (`data-x`, `data-y`) and a `<title>` that the
 * browser shows on hover, so the numbers are there to read and to test.
 */
import { cssRgb, isDark, sequential } from './colormap.js';
import { escapeHtml as esc } from './escape.js';

export interface Point {
  x: number;
  y: number;
  /** Hover text. */
  title: string;
}

export interface Series {
  label: string;
  colour: string;
  /** SVG stroke-dasharray, e.g. '6 3'; solid when absent. */
  dash?: string;
  points: Point[];
}

export interface LineChartSpec {
  /** Identifies the chart in the page (`data-chart`). */
  id: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  width?: number;
  height?: number;
}

const MARGIN = { top: 12, right: 16, bottom: 42, left: 60 };

/** About `count` round tick values covering [min, max]: steps of 1, 2 or 5 × 10^k. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!(max > min)) {
    const pad = Math.abs(min) > 0 ? Math.abs(min) * 0.1 : 1;
    return niceTicks(min - pad, max + pad, count);
  }
  const raw = (max - min) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw)!;
  // Whole multiples of the step, from the last one at or below min to the first at or above max;
  // the tolerance keeps a max that is a multiple (up to rounding) from adding one more tick.
  const from = Math.floor(min / step + 1e-9);
  const to = Math.ceil(max / step - 1e-9);
  // Rounding to the step's precision keeps 0.30000000000000004 off the axis.
  const digits = Math.max(0, -Math.floor(Math.log10(step)));
  const ticks: number[] = [];
  for (let k = from; k <= to; k++) ticks.push(Number((k * step).toFixed(digits)));
  return ticks;
}

export function formatTick(v: number): string {
  if (Math.abs(v) >= 1000) return v.toLocaleString('en-US');
  return String(v);
}

export function lineChart(spec: LineChartSpec): string {
  const width = spec.width ?? 1000;
  const height = spec.height ?? 320;
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const all = spec.series.flatMap((s) => s.points);
  const head = `<svg class="chart" data-chart="${esc(spec.id)}" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${esc(`${spec.yLabel} by ${spec.xLabel}`)}">`;
  if (all.length === 0) {
    return `${head}<text x="${width / 2}" y="${height / 2}" text-anchor="middle" class="empty">no data</text></svg>`;
  }
  const xTicks = niceTicks(Math.min(0, ...all.map((p) => p.x)), Math.max(...all.map((p) => p.x)));
  const yTicks = niceTicks(Math.min(...all.map((p) => p.y)), Math.max(...all.map((p) => p.y)));
  const [x0, x1] = [xTicks[0]!, xTicks.at(-1)!];
  const [y0, y1] = [yTicks[0]!, yTicks.at(-1)!];
  const sx = (x: number) => MARGIN.left + ((x - x0) / (x1 - x0 || 1)) * plotW;
  const sy = (y: number) => MARGIN.top + plotH - ((y - y0) / (y1 - y0 || 1)) * plotH;
  const r = (n: number) => n.toFixed(1);

  const parts: string[] = [head];
  parts.push('<g class="grid">');
  for (const t of yTicks)
    parts.push(
      `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${r(sy(t))}" y2="${r(sy(t))}"/><text x="${MARGIN.left - 6}" y="${r(sy(t) + 4)}" text-anchor="end">${esc(formatTick(t))}</text>`,
    );
  for (const t of xTicks)
    parts.push(
      `<line y1="${MARGIN.top}" y2="${MARGIN.top + plotH}" x1="${r(sx(t))}" x2="${r(sx(t))}"/><text y="${MARGIN.top + plotH + 16}" x="${r(sx(t))}" text-anchor="middle">${esc(formatTick(t))}</text>`,
    );
  parts.push('</g>');
  parts.push(
    `<text class="axis-label" x="${MARGIN.left + plotW / 2}" y="${height - 6}" text-anchor="middle">${esc(spec.xLabel)}</text>`,
    `<text class="axis-label" transform="translate(14 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle">${esc(spec.yLabel)}</text>`,
  );
  spec.series.forEach((s, i) => {
    if (s.points.length === 0) return;
    const d = s.points.map((p, j) => `${j ? 'L' : 'M'}${r(sx(p.x))} ${r(sy(p.y))}`).join('');
    parts.push(
      `<g class="series" data-series="${i}" data-label="${esc(s.label)}" data-points="${s.points.length}">`,
      `<path d="${d}" fill="none" stroke="${esc(s.colour)}" stroke-width="1.8"${s.dash ? ` stroke-dasharray="${esc(s.dash)}"` : ''}/>`,
    );
    for (const p of s.points)
      parts.push(
        `<circle class="point" cx="${r(sx(p.x))}" cy="${r(sy(p.y))}" r="2.6" fill="${esc(s.colour)}" data-x="${p.x}" data-y="${p.y}"><title>${esc(p.title)}</title></circle>`,
      );
    parts.push('</g>');
  });
  parts.push('</svg>');
  return parts.join('');
}

/** The legend of a chart, as HTML beside it. */
export function legend(series: readonly Series[]): string {
  const items = series.map(
    (s) =>
      `<li><svg width="28" height="10" aria-hidden="true"><line x1="0" x2="28" y1="5" y2="5" stroke="${esc(s.colour)}" stroke-width="2.5"${s.dash ? ` stroke-dasharray="${esc(s.dash)}"` : ''}/></svg>${esc(s.label)} <span class="muted">(${s.points.length} points)</span></li>`,
  );
  return `<ul class="legend">${items.join('')}</ul>`;
}

/**
 * A confusion matrix as a heat map: rows are the true class, columns the prediction, each cell
 * shaded by its share of the row (the true class) on a square-root scale — linear shading would
 * leave every error but the largest near white — and labelled with its count.
 */
export function confusionHeatMap(id: string, confusion: readonly number[], classes: number): string {
  const cell = 34;
  const left = 44;
  const top = 40;
  const size = left + classes * cell + 8;
  const parts = [
    `<svg class="heatmap" data-chart="${esc(id)}" viewBox="0 0 ${size} ${top + classes * cell + 8}" width="${size}" height="${top + classes * cell + 8}" role="img" aria-label="confusion matrix">`,
    `<text class="axis-label" x="${left + (classes * cell) / 2}" y="12" text-anchor="middle">predicted</text>`,
    `<text class="axis-label" transform="translate(12 ${top + (classes * cell) / 2}) rotate(-90)" text-anchor="middle">true</text>`,
  ];
  for (let c = 0; c < classes; c++) {
    parts.push(
      `<text x="${left + c * cell + cell / 2}" y="${top - 8}" text-anchor="middle">${c}</text>`,
      `<text x="${left - 8}" y="${top + c * cell + cell / 2 + 4}" text-anchor="end">${c}</text>`,
    );
  }
  for (let t = 0; t < classes; t++) {
    let rowTotal = 0;
    for (let p = 0; p < classes; p++) rowTotal += confusion[t * classes + p] ?? 0;
    for (let p = 0; p < classes; p++) {
      const n = confusion[t * classes + p] ?? 0;
      const share = rowTotal ? n / rowTotal : 0;
      const colour = sequential(Math.sqrt(share));
      const x = left + p * cell;
      const y = top + t * cell;
      parts.push(
        `<g class="cell" data-true="${t}" data-predicted="${p}" data-count="${n}"><rect x="${x}" y="${y}" width="${cell - 1}" height="${cell - 1}" fill="${cssRgb(colour)}"/>`,
        `<text x="${x + cell / 2}" y="${y + cell / 2 + 4}" text-anchor="middle" fill="${isDark(colour) ? '#fff' : '#222'}">${n}</text>`,
        `<title>true ${t}, predicted ${p}: ${n} (${(100 * share).toFixed(1)}% of ${rowTotal})</title></g>`,
      );
    }
  }
  parts.push('</svg>');
  return parts.join('');
}

/**
 * Hand-written SVG line charts for the report. Plain markup, no script, so the page needs nothing
 * from the network and works where scripts are blocked. Every data point is an element carrying
 * its values (`data-x`, `data-y`) and a `<title>` that the browser shows on hover, so the numbers
 * are there to read and to test.
 *
 * - The axes fit the data (axis.ts): the value axis leaves out each series' first tenth of steps,
 *   and points beyond it are drawn as hollow markers on the edge they lie past.
 * - Margins are measured from the tick labels, so "30,000" at the right end is never cut off.
 * - A sparse series (a run evaluated twice) is drawn as markers alone: a straight line between two
 *   evaluations would claim values nobody measured.
 * - Marks: the best evaluation (a diamond and a dashed guide) and early stopping (a solid line).
 */
import { axis, fitRange, labelWidth } from './axis.js';
import { escapeHtml as esc } from './escape.js';

export { niceTicks } from './axis.js';

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

/** Something that happened at a step of one run, drawn across the chart. */
export interface Mark {
  kind: 'best' | 'stop';
  x: number;
  /** The value at the mark (the best metric), when this chart shows it. */
  y?: number;
  colour: string;
  title: string;
}

export interface LineChartSpec {
  /** Identifies the chart in the page (`data-chart`). */
  id: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  marks?: Mark[];
  width?: number;
  height?: number;
}

/** Below this many points, or with a gap wider than this share of the steps, a series is markers only. */
const SPARSE_POINTS = 5;
const SPARSE_GAP = 0.25;

export function isSparse(points: readonly { x: number }[], span: number): boolean {
  if (points.length < SPARSE_POINTS) return true;
  for (let i = 1; i < points.length; i++)
    if (span > 0 && points[i]!.x - points[i - 1]!.x > span * SPARSE_GAP) return true;
  return false;
}

export function lineChart(spec: LineChartSpec): string {
  const width = spec.width ?? 1000;
  const height = spec.height ?? 320;
  const all = spec.series.flatMap((s) => s.points);
  const head = `<svg class="chart" data-chart="${esc(spec.id)}" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${esc(`${spec.yLabel} by ${spec.xLabel}`)}">`;
  if (all.length === 0) {
    return `${head}<text x="${width / 2}" y="${height / 2}" text-anchor="middle" class="empty">no data</text></svg>`;
  }
  const xs = all.map((p) => p.x);
  const xAxis = axis(Math.min(0, ...xs), Math.max(...xs));
  const [lo, hi] = fitRange(spec.series.map((s) => s.points))!;
  const yAxis = axis(lo, hi, 0.06);
  // Room for the widest value label and the rotated axis title on the left; half of the last step
  // label on the right, as it is centred on the plot's edge.
  const left = Math.ceil(26 + Math.max(...yAxis.ticks.map((t) => labelWidth(t.label)), 12));
  const lastX = xAxis.ticks.at(-1);
  const right = Math.ceil(Math.max(16, lastX ? labelWidth(lastX.label) / 2 + 6 : 0));
  const top = 14;
  const bottom = 42;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const sx = (x: number) => left + ((x - xAxis.min) / (xAxis.max - xAxis.min || 1)) * plotW;
  const syRaw = (y: number) => top + plotH - ((y - yAxis.min) / (yAxis.max - yAxis.min || 1)) * plotH;
  const r = (n: number) => n.toFixed(1);
  const clip = `clip-${spec.id.replace(/[^\w-]/g, '_')}`;

  const parts: string[] = [head];
  parts.push(
    `<defs><clipPath id="${esc(clip)}"><rect x="${left}" y="${top}" width="${plotW}" height="${plotH}"/></clipPath></defs>`,
  );
  parts.push('<g class="grid">');
  for (const t of yAxis.ticks)
    parts.push(
      `<line x1="${left}" x2="${left + plotW}" y1="${r(syRaw(t.value))}" y2="${r(syRaw(t.value))}"/><text x="${left - 6}" y="${r(syRaw(t.value) + 4)}" text-anchor="end">${esc(t.label)}</text>`,
    );
  for (const t of xAxis.ticks)
    parts.push(
      `<line y1="${top}" y2="${top + plotH}" x1="${r(sx(t.value))}" x2="${r(sx(t.value))}"/><text y="${top + plotH + 16}" x="${r(sx(t.value))}" text-anchor="middle">${esc(t.label)}</text>`,
    );
  parts.push(`<rect class="frame" x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none"/>`);
  parts.push('</g>');
  parts.push(
    `<text class="axis-label" x="${left + plotW / 2}" y="${height - 6}" text-anchor="middle">${esc(spec.xLabel)}</text>`,
    `<text class="axis-label" transform="translate(14 ${top + plotH / 2}) rotate(-90)" text-anchor="middle">${esc(spec.yLabel)}</text>`,
  );
  for (const m of spec.marks ?? []) parts.push(markSvg(m, sx(m.x), syRaw, top, plotH, yAxis));
  const span = xAxis.max - xAxis.min;
  spec.series.forEach((s, i) => {
    if (s.points.length === 0) return;
    const sparse = isSparse(s.points, span);
    parts.push(
      `<g class="series${sparse ? ' sparse' : ''}" data-series="${i}" data-label="${esc(s.label)}" data-points="${s.points.length}">`,
    );
    if (!sparse) {
      const d = s.points.map((p, j) => `${j ? 'L' : 'M'}${r(sx(p.x))} ${r(syRaw(p.y))}`).join('');
      parts.push(
        `<path d="${d}" fill="none" stroke="${esc(s.colour)}" stroke-width="1.8" clip-path="url(#${esc(clip)})"${s.dash ? ` stroke-dasharray="${esc(s.dash)}"` : ''}/>`,
      );
    }
    for (const p of s.points) {
      const beyond = p.y > yAxis.max ? 'above' : p.y < yAxis.min ? 'below' : undefined;
      const cy = beyond === 'above' ? top + 3 : beyond === 'below' ? top + plotH - 3 : syRaw(p.y);
      const look = beyond
        ? `r="3" fill="#fff" stroke="${esc(s.colour)}" stroke-width="1.5"`
        : sparse
          ? `r="4.5" fill="${esc(s.colour)}" stroke="#fff" stroke-width="1.5"`
          : `r="2.6" fill="${esc(s.colour)}"`;
      parts.push(
        `<circle class="point${beyond ? ` beyond ${beyond}` : ''}" cx="${r(sx(p.x))}" cy="${r(cy)}" ${look} data-x="${p.x}" data-y="${p.y}"><title>${esc(p.title)}${beyond ? ` (${beyond} the axis)` : ''}</title></circle>`,
      );
    }
    parts.push('</g>');
  });
  parts.push('</svg>');
  return parts.join('');
}

function markSvg(
  m: Mark,
  x: number,
  sy: (y: number) => number,
  top: number,
  plotH: number,
  yAxis: { min: number; max: number },
): string {
  const r = (n: number) => n.toFixed(1);
  const c = esc(m.colour);
  const open = `<g class="mark" data-mark="${m.kind}" data-x="${m.x}"${m.y === undefined ? '' : ` data-y="${m.y}"`}><title>${esc(m.title)}</title>`;
  if (m.kind === 'stop') {
    return `${open}<line x1="${r(x)}" x2="${r(x)}" y1="${top}" y2="${top + plotH}" stroke="${c}" stroke-width="1.5"/><text x="${r(x - 4)}" y="${top + 11}" text-anchor="end" fill="${c}">early stop</text></g>`;
  }
  const guide = `<line x1="${r(x)}" x2="${r(x)}" y1="${top}" y2="${top + plotH}" stroke="${c}" stroke-width="1" stroke-dasharray="2 4" opacity="0.8"/>`;
  if (m.y === undefined || m.y > yAxis.max || m.y < yAxis.min) return `${open}${guide}</g>`;
  const y = sy(m.y);
  const d = `M${r(x)} ${r(y - 7)}L${r(x + 7)} ${r(y)}L${r(x)} ${r(y + 7)}L${r(x - 7)} ${r(y)}Z`;
  return `${open}${guide}<path d="${d}" fill="${c}" stroke="#fff" stroke-width="1.5"/></g>`;
}

/** The legend of a chart, as HTML beside it: a line, or a marker for a series drawn as markers. */
export function legend(series: readonly Series[], marks: readonly Mark[] = []): string {
  const xs = series.flatMap((s) => s.points.map((p) => p.x));
  const span = xs.length ? Math.max(...xs) - Math.min(0, ...xs) : 0;
  const items = series.map((s) => {
    const sample = isSparse(s.points, span)
      ? `<circle cx="14" cy="5" r="4" fill="${esc(s.colour)}"/>`
      : `<line x1="0" x2="28" y1="5" y2="5" stroke="${esc(s.colour)}" stroke-width="2.5"${s.dash ? ` stroke-dasharray="${esc(s.dash)}"` : ''}/>`;
    return `<li><svg width="28" height="10" aria-hidden="true">${sample}</svg>${esc(s.label)} <span class="muted">(${s.points.length} point${s.points.length === 1 ? '' : 's'})</span></li>`;
  });
  if (marks.some((m) => m.kind === 'best'))
    items.push(
      '<li><svg width="28" height="12" aria-hidden="true"><path d="M14 0L20 6L14 12L8 6Z" fill="#555"/></svg>best evaluation</li>',
    );
  if (marks.some((m) => m.kind === 'stop'))
    items.push(
      '<li><svg width="28" height="12" aria-hidden="true"><line x1="14" x2="14" y1="0" y2="12" stroke="#555" stroke-width="1.5"/></svg>early stop</li>',
    );
  return `<ul class="legend">${items.join('')}</ul>`;
}

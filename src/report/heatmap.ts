/**
 * A confusion matrix as a heat map: rows are the true class, columns the prediction, each cell
 * shaded by its share of the row (the true class) on a square-root scale — linear shading would
 * leave every error but the largest near white — and labelled with its count.
 *
 * Legible up to ~50 classes: the cells shrink from 34 px to fit the page's width (never below
 * 16 px, so each stays a readable square with its class labels beside it), and a count is written
 * in a cell only where it fits; the others are on hover. Zeros are left blank in a large matrix,
 * so the errors that happen stand out from the empty cells.
 */
import { cssRgb, isDark, sequential } from './colormap.js';
import { escapeHtml as esc } from './escape.js';

/** Widest the matrix may be drawn: the page's content width, less the section's padding. */
const MAX_WIDTH = 1100;
const LEFT = 44;
const TOP = 40;

/** The side of one cell for `classes` classes, in pixels. */
export function cellSize(classes: number): number {
  return Math.max(16, Math.min(34, Math.floor((MAX_WIDTH - LEFT - 8) / classes)));
}

export function confusionHeatMap(id: string, confusion: readonly number[], classes: number): string {
  const cell = cellSize(classes);
  // Labels and counts shrink with the cells, not below 9 px.
  const font = Math.max(9, Math.min(11, Math.floor(cell * 0.45)));
  const large = classes > 12;
  const size = LEFT + classes * cell + 8;
  const tall = TOP + classes * cell + 8;
  const parts = [
    `<svg class="heatmap" data-chart="${esc(id)}" data-cell="${cell}" viewBox="0 0 ${size} ${tall}" width="${size}" height="${tall}" role="img" aria-label="confusion matrix" style="font-size:${font}px">`,
    `<text class="axis-label" x="${LEFT + (classes * cell) / 2}" y="12" text-anchor="middle">predicted</text>`,
    `<text class="axis-label" transform="translate(12 ${TOP + (classes * cell) / 2}) rotate(-90)" text-anchor="middle">true</text>`,
  ];
  for (let c = 0; c < classes; c++) {
    parts.push(
      `<text class="class-label" x="${LEFT + c * cell + cell / 2}" y="${TOP - 8}" text-anchor="middle">${c}</text>`,
      `<text class="class-label" x="${LEFT - 8}" y="${TOP + c * cell + cell / 2 + font / 3}" text-anchor="end">${c}</text>`,
    );
  }
  for (let t = 0; t < classes; t++) {
    let rowTotal = 0;
    for (let p = 0; p < classes; p++) rowTotal += confusion[t * classes + p] ?? 0;
    for (let p = 0; p < classes; p++) {
      const n = confusion[t * classes + p] ?? 0;
      const share = rowTotal ? n / rowTotal : 0;
      const colour = sequential(Math.sqrt(share));
      const x = LEFT + p * cell;
      const y = TOP + t * cell;
      // A count is written only where its digits fit the cell (~0.6 em each).
      const fits = String(n).length * font * 0.6 <= cell - 3;
      const text =
        fits && !(large && n === 0)
          ? `<text x="${x + cell / 2}" y="${y + cell / 2 + font / 3}" text-anchor="middle" fill="${isDark(colour) ? '#fff' : '#222'}">${n}</text>`
          : '';
      parts.push(
        `<g class="cell" data-true="${t}" data-predicted="${p}" data-count="${n}"><rect x="${x}" y="${y}" width="${cell - 1}" height="${cell - 1}" fill="${cssRgb(colour)}"/>`,
        text,
        `<title>true ${t}, predicted ${p}: ${n} (${(100 * share).toFixed(1)}% of ${rowTotal})</title></g>`,
      );
    }
  }
  parts.push('</svg>');
  return parts.join('');
}

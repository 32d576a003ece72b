/**
 * The report page, in sections: the runs and the settings in which they differ, the learning
 * curves, and one section per run. `rxtrain report` writes them as one self-contained HTML file:
 * styles inline, images as data: URLs, charts as SVG markup, and no script at all; a
 * Content-Security-Policy forbids every fetch except data: images, so even a future edit that adds
 * an external reference fails closed. `rxtrain serve` sends the same sections, each by its id, to
 * the live page as they change (src/serve/).
 */
import { VERSION } from '../util/version.js';
import { RUN_COLOURS } from './colormap.js';
import type { Comparison } from './compare.js';
import { escapeHtml as esc } from './escape.js';
import { finalEvals, type RunData } from './runDir.js';
import { int, num, type RunPictures, runSection } from './runSection.js';
import { STYLE } from './style.js';
import { legend, lineChart, type Mark, type Series } from './svg.js';

export type { RunPictures } from './runSection.js';

/** The report's policy: nothing but data: images and the inline style; no forms, no base URL. */
export const REPORT_CSP =
  "default-src 'none'; img-src data:; style-src 'unsafe-inline'; form-action 'none'; base-uri 'none'";

/** A part of the page the live view replaces by its id. */
export interface PageSection {
  id: string;
  html: string;
}

/** Line style by data split, the same in every chart: the colour says which run. */
function dashOf(split: string): string | undefined {
  if (split === 'train') return undefined;
  if (split === 'test') return '6 3';
  if (split === 'val') return '2 3';
  return '9 3 2 3';
}

export const runColour = (i: number) => RUN_COLOURS[i % RUN_COLOURS.length]!;

/** One metric of one split of one run, as a chart series; `epoch` shown on hover. */
function curve(
  run: RunData,
  colour: string,
  split: string,
  metric: 'loss' | 'accuracy',
  points: readonly { step: number; epoch: number; loss: number; accuracy: number }[],
): Series {
  const label = `${run.label} · ${split} ${metric}`;
  return {
    label,
    colour,
    dash: dashOf(split),
    points: points.map((p) => ({
      x: p.step,
      y: p[metric],
      title: `${label} at step ${int(p.step)} (epoch ${num(p.epoch, 2)}): ${num(p[metric])}`,
    })),
  };
}

/** The best evaluation a run reported last, and where early stopping ended it, as chart marks. */
function marksOf(run: RunData, colour: string): { loss: Mark[]; accuracy: Mark[] } {
  const loss: Mark[] = [];
  const accuracy: Mark[] = [];
  const best = run.evals.findLast((e) => e.best)?.best;
  if (best) {
    const metric = best.metric.split('.').pop();
    const title = `${run.label}: best ${best.metric} ${num(best.value)} at step ${int(best.step)}`;
    const mark = (y?: number): Mark => ({ kind: 'best', x: best.step, y, colour, title });
    if (metric === 'loss') loss.push(mark(best.value));
    else accuracy.push(mark(metric === 'accuracy' ? best.value : undefined));
  }
  const stop = run.evals.find((e) => e.earlyStop);
  if (stop) {
    const mark: Mark = {
      kind: 'stop',
      x: stop.step,
      colour,
      title: `${run.label}: early stop at step ${int(stop.step)}: ${stop.earlyStop}`,
    };
    loss.push(mark);
    accuracy.push(mark);
  }
  return { loss, accuracy };
}

export function curvesSection(runs: readonly RunData[]): string {
  const lossSeries: Series[] = [];
  const accuracySeries: Series[] = [];
  const lossMarks: Mark[] = [];
  const accuracyMarks: Mark[] = [];
  runs.forEach((run, i) => {
    const splits = [...new Set(run.evals.map((e) => e.split))].map(
      (split) => [split, run.evals.filter((e) => e.split === split)] as const,
    );
    for (const [split, points] of [['train', run.train] as const, ...splits]) {
      lossSeries.push(curve(run, runColour(i), split, 'loss', points));
      accuracySeries.push(curve(run, runColour(i), split, 'accuracy', points));
    }
    const marks = marksOf(run, runColour(i));
    lossMarks.push(...marks.loss);
    accuracyMarks.push(...marks.accuracy);
  });
  return `<section id="curves">
<h2>Learning curves</h2>
<p class="muted">Colour: run. Line: solid = training (mean over each logging interval), dashed = test, dotted = validation; a series with few points is drawn as markers alone. The value axis fits each curve after its first tenth of steps: earlier points beyond it are hollow markers on its edge. Hover a point for its value.</p>
<figure class="chart-box">
<figcaption>Loss by step</figcaption>
${lineChart({ id: 'loss', xLabel: 'step', yLabel: 'cross-entropy loss', series: lossSeries, marks: lossMarks })}
${legend(lossSeries, lossMarks)}
</figure>
<figure class="chart-box">
<figcaption>Accuracy by step</figcaption>
${lineChart({ id: 'accuracy', xLabel: 'step', yLabel: 'accuracy', series: accuracySeries, marks: accuracyMarks })}
${legend(accuracySeries, accuracyMarks)}
</figure>
</section>`;
}

export function runsSection(runs: readonly RunData[], comparison: Comparison): string {
  return `<section id="runs">
<h2>Runs</h2>
${runsTable(runs)}
${settingsDiff(runs, comparison)}
</section>`;
}

function runsTable(runs: readonly RunData[]): string {
  const splits = [...new Set(runs.flatMap((r) => finalEvals(r).map((e) => e.split)))];
  const head = `<tr><th>run</th><th>directory</th><th>experiment</th><th>status</th><th>steps</th><th>epochs</th>${splits
    .map((s) => `<th>${esc(s)} accuracy</th><th>${esc(s)} loss</th>`)
    .join('')}<th>best</th><th>time</th><th>weights sha256</th></tr>`;
  const rows = runs.map((run, i) => {
    const last = new Map(finalEvals(run).map((e) => [e.split, e]));
    const s = run.summary;
    const steps = s?.steps ?? run.train.at(-1)?.step;
    const epochs = s?.epochs ?? run.train.at(-1)?.epoch;
    const best = run.evals.findLast((e) => e.best)?.best;
    const stopped = run.evals.some((e) => e.earlyStop) ? ' <span class="muted">(stopped early)</span>' : '';
    return `<tr data-run="${esc(run.key)}"><td><a href="#run-${esc(run.key)}"><span class="swatch" style="background:${runColour(i)}"></span>${esc(run.label)}</a></td><td>${esc(run.dirName)}</td><td>${esc(run.name)}</td><td class="status-${esc(run.status)}" data-status>${esc(run.status)}</td><td>${steps === undefined ? '' : int(steps)}</td><td>${epochs === undefined ? '' : num(epochs, 2)}</td>${splits
      .map((split) => {
        const e = last.get(split);
        return e ? `<td>${num(e.accuracy)}</td><td>${num(e.loss)}</td>` : '<td></td><td></td>';
      })
      .join(
        '',
      )}<td>${best ? `${num(best.value)} @ ${int(best.step)} <span class="muted">${esc(best.metric)}</span>${stopped}` : ''}</td><td>${s ? `${(s.durationMs / 1000).toFixed(1)} s` : ''}</td><td><code>${esc(s?.weightsSha256?.slice(0, 12) ?? '')}</code></td></tr>`;
  });
  return `<table class="runs">${head}${rows.join('')}</table>`;
}

/** The settings in which the runs differ, one row each; the rest is the same everywhere. */
function settingsDiff(runs: readonly RunData[], comparison: Comparison): string {
  if (runs.length < 2) return '';
  if (comparison.keys.length === 0)
    return '<p class="muted">Every run has the same resolved config (or none to compare).</p>';
  const head = `<tr><th>setting</th>${runs.map((r, i) => `<th><span class="swatch" style="background:${runColour(i)}"></span>${esc(r.label)}</th>`).join('')}</tr>`;
  const rows = comparison.keys.map(
    (key) =>
      `<tr data-key="${esc(key)}"><td><code>${esc(key)}</code></td>${comparison.values.map((v) => `<td>${esc(v.get(key) ?? '—')}</td>`).join('')}</tr>`,
  );
  return `<h3>Settings that differ</h3>
<table class="diff">${head}${rows.join('')}</table>
<p class="muted">Every other setting is the same in all ${runs.length} runs; each run's full resolved config is folded at the end of its section.</p>`;
}

/** Every section of the page, in order: runs, curves, then one per run. */
export function pageSections(
  runs: readonly RunData[],
  pictures: readonly RunPictures[],
  comparison: Comparison,
): PageSection[] {
  return [
    { id: 'runs', html: runsSection(runs, comparison) },
    { id: 'curves', html: curvesSection(runs) },
    ...runs.map((run, i) => ({
      id: `run-${run.key}`,
      html: runSection(run, runColour(i), pictures[i] ?? {}),
    })),
  ];
}

export interface PageShell {
  title: string;
  /** A <meta> Content-Security-Policy (the file report; the server sends its policy as a header). */
  metaCsp?: string;
  /** Under the title. */
  subtitle: string;
  /** The live page's status badge and script. */
  live?: { script: string };
}

export function renderPage(shell: PageShell, sections: readonly PageSection[]): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
${shell.metaCsp ? `<meta http-equiv="Content-Security-Policy" content="${shell.metaCsp}">\n` : ''}<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="rxtrain ${esc(VERSION)}">
<title>${esc(shell.title)}</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>rxtrain ${shell.live ? 'live' : 'report'}${shell.live ? ' <span class="live" id="live-status" data-state="connecting">connecting…</span>' : ''}</h1>
<p class="muted" id="subtitle">${shell.subtitle}</p>
</header>
<main>
${sections.map((s) => s.html).join('\n')}
</main>
${shell.live ? `<script>${shell.live.script}</script>\n` : ''}</body>
</html>
`;
}

export function renderReport(
  runs: readonly RunData[],
  pictures: readonly RunPictures[],
  comparison: Comparison,
): string {
  return renderPage(
    {
      title: `rxtrain report: ${runs.map((r) => r.label).join(', ')}`,
      metaCsp: REPORT_CSP,
      subtitle: `${runs.length} run${runs.length === 1 ? '' : 's'}, drawn from ${runs.length === 1 ? 'its run directory' : 'their run directories'} by rxtrain ${esc(VERSION)}`,
    },
    pageSections(runs, pictures, comparison),
  );
}

/**
 * The sweep report page: one self-contained HTML file, no script, the same style and
 * Content-Security-Policy as the run report (page.ts). It shows the trials ranked by the metric
 * with only the parameters that vary, the metric against each of them, the best trials' curves
 * overlaid, and the best trial's confusion matrix and weights.
 */
import { describePoint, formatValue } from '../sweep/searchSpace.js';
import type { TrialRecord } from '../sweep/sweepState.js';
import { duration } from '../util/format.js';
import { VERSION } from '../util/version.js';
import { RUN_COLOURS } from './colormap.js';
import { escapeHtml as esc } from './escape.js';
import type { WeightTemplates } from './pictures.js';
import { finalEvals, type RunData } from './runDir.js';
import { confusionBlock, templatesBlock } from './runSection.js';
import { type ScatterPoint, scatterChart } from './scatter.js';
import { STYLE } from './style.js';
import { legend, lineChart, type Series } from './svg.js';
import type { SweepReportData } from './sweepReport.js';

/** Point colours by status: finished trials in the palette's blue, the rest muted. */
const STATUS_COLOUR: Record<string, string> = {
  done: '#4e79a7',
  'stopped-early': '#bab0ac',
  interrupted: '#f28e2b',
  running: '#f28e2b',
  planned: '#f28e2b',
  failed: '#e15759',
};

const num = (n: number | undefined, digits = 4) =>
  n === undefined || !Number.isFinite(n) ? '' : n.toFixed(digits);
const int = (n: number | undefined) => (n === undefined ? '' : Math.round(n).toLocaleString('en-US'));

export function renderSweepReport(
  data: SweepReportData,
  bestRun: RunData | undefined,
  templates: WeightTemplates | undefined,
): string {
  const counts = new Map<string, number>();
  for (const t of data.trials) counts.set(t.status, (counts.get(t.status) ?? 0) + 1);
  const countText = [...counts].map(([s, n]) => `${n} ${s}`).join(', ');
  const title = `rxtrain sweep report: ${data.name}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="rxtrain ${esc(VERSION)}">
<title>${esc(title)}</title>
<style>${STYLE}${SWEEP_STYLE}</style>
</head>
<body>
<header>
<h1>Sweep ${esc(data.name)}</h1>
<p class="muted">${data.trials.length} trials (${esc(countText)}) · ${esc(data.method)}${data.scheduler ? ` with ${esc(data.scheduler)}` : ''} · ranked by ${esc(data.metric)} (${data.mode === 'max' ? 'higher' : 'lower'} is better) · ${int(data.stepsSpent)} SGD steps spent · ${esc(data.status)} · <code>${esc(data.dir)}</code></p>
${data.best ? `<p>Best: <b>${esc(data.best.id)}</b> with ${esc(data.metric)} <b>${num(data.best.metric)}</b> — ${esc(describePoint(data.best.params, data.varying))}</p>` : '<p class="notes">No trial has completed yet.</p>'}
</header>
<main>
<section id="trials">
<h2>Trials</h2>
<p class="muted">Sorted by ${esc(data.metric)} at each trial's last evaluation: completed trials first, then those ASHA stopped early (measured after less training, so not comparable with the completed ones), then unfinished, then failed. Only parameters that vary are shown.</p>
${trialsTable(data)}
</section>
<section id="parameters">
<h2>${esc(data.metric)} against each parameter</h2>
<p class="muted">One point per trial: <span class="dot" style="background:${STATUS_COLOUR.done}"></span>completed, <span class="dot" style="background:${STATUS_COLOUR['stopped-early']}"></span>stopped early, <span class="dot" style="background:${STATUS_COLOUR.running}"></span>unfinished. Hover a point for its trial.</p>
<div class="scatters">${data.varying.map((key, i) => `<figure class="chart-box"><figcaption>${esc(key)}</figcaption>${scatterChart({ id: `param-${i}`, xLabel: key, yLabel: data.metric, points: scatterPoints(data, key) })}</figure>`).join('\n')}</div>
</section>
<section id="curves">
<h2>The best ${data.top.length} trial${data.top.length === 1 ? '' : 's'}, overlaid</h2>
${curves(data)}
</section>
<section id="best">
<h2>Best trial${data.best ? `: ${esc(data.best.id)}` : ''}</h2>
${bestSection(data, bestRun, templates)}
</section>
</main>
</body>
</html>
`;
}

function trialsTable(data: SweepReportData): string {
  const head = `<tr><th>#</th><th>trial</th><th>status</th>${data.varying.map((k) => `<th>${esc(k)}</th>`).join('')}<th>${esc(data.metric)}</th><th>steps</th><th>steps spent</th><th>time</th><th>note</th></tr>`;
  const rows = data.trials.map((t, i) => {
    const note =
      t.status === 'failed'
        ? (t.error ?? '')
        : t.rungs.length && t.status === 'stopped-early'
          ? `stopped at rung ${t.rungs.at(-1)!.rung} (${int(t.rungs.at(-1)!.resource)})`
          : '';
    return `<tr data-trial="${esc(t.id)}" data-status="${esc(t.status)}"><td>${i + 1}</td><td><code>${esc(t.id)}</code></td><td class="status-${esc(t.status)}">${esc(t.status)}</td>${data.varying
      .map((k) => `<td>${esc(formatValue(t.params[k]))}</td>`)
      .join(
        '',
      )}<td class="metric">${num(t.metric)}</td><td>${int(t.steps)}</td><td>${int(t.stepsSpent)}</td><td>${t.durationMs ? duration(t.durationMs) : ''}</td><td class="note">${esc(note)}</td></tr>`;
  });
  return `<table class="trials">${head}${rows.join('')}</table>`;
}

function scatterPoints(data: SweepReportData, key: string): ScatterPoint[] {
  return data.trials
    .filter((t) => t.metric !== undefined && Number.isFinite(t.metric))
    .sort((a, b) => a.index - b.index)
    .map((t: TrialRecord) => ({
      x: t.params[key],
      y: t.metric!,
      colour: STATUS_COLOUR[t.status] ?? '#999',
      key: t.id,
      title: `${t.id} (${t.status}): ${data.metric} ${num(t.metric)} — ${describePoint(t.params, data.varying)}`,
    }));
}

function curves(data: SweepReportData): string {
  if (!data.top.length) return '<p class="muted">No completed trial yet.</p>';
  const [split, name] = data.metric.split('.') as [string, string];
  const metricOf = name === 'loss' ? 'loss' : 'accuracy';
  const colour = (i: number) => RUN_COLOURS[i % RUN_COLOURS.length]!;
  const evalSeries: Series[] = data.top.map((run, i) => ({
    label: `${run.label} · ${split} ${metricOf}`,
    colour: colour(i),
    // From the first evaluation after the start: the untrained model's would squash the curves flat.
    points: run.evals
      .filter((e) => e.split === split && e.step > 0)
      .map((e) => ({
        x: e.step,
        y: e[metricOf],
        title: `${run.label} at step ${int(e.step)}: ${split} ${metricOf} ${num(e[metricOf])}`,
      })),
  }));
  const lossSeries: Series[] = data.top.map((run, i) => ({
    label: `${run.label} · training loss`,
    colour: colour(i),
    points: run.train.map((p) => ({
      x: p.step,
      y: p.loss,
      title: `${run.label} at step ${int(p.step)}: training loss ${num(p.loss)}`,
    })),
  }));
  return `<p class="muted">Colour: trial, best first. ${esc(split)} ${metricOf} at each evaluation after the start, and the training loss (mean over each logging interval).</p>
<figure class="chart-box"><figcaption>${esc(split)} ${metricOf} by step</figcaption>
${lineChart({ id: 'top-metric', xLabel: 'step', yLabel: `${split} ${metricOf}`, series: evalSeries, height: 280 })}
${legend(evalSeries)}</figure>
<figure class="chart-box"><figcaption>Training loss by step</figcaption>
${lineChart({ id: 'top-loss', xLabel: 'step', yLabel: 'cross-entropy loss', series: lossSeries, height: 280 })}
${legend(lossSeries)}</figure>`;
}

function bestSection(
  data: SweepReportData,
  run: RunData | undefined,
  templates: WeightTemplates | undefined,
): string {
  if (!data.best || !run) return '<p class="muted">No completed trial.</p>';
  const parts = [
    `<p>${esc(describePoint(data.best.params, Object.keys(data.best.params)))}</p>`,
    `<p class="muted">Its run directory: <code>${esc(run.dir)}</code> (<code>rxtrain report</code> on it gives the full run report).</p>`,
    '<h3>Confusion matrix</h3>',
  ];
  const evals = finalEvals(run).filter((e) => e.confusion && e.classes);
  parts.push(
    evals.length
      ? evals.map((e) => confusionBlock('0', e)).join('\n')
      : '<p class="muted">No evaluation with a confusion matrix.</p>',
  );
  parts.push('<h3>Learned weights</h3>', templatesBlock('0', templates));
  return parts.join('\n');
}

const SWEEP_STYLE = `
#trials, #parameters, #best { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 4px 16px 16px; margin: 16px 0; }
table.trials td.note { text-align: left; color: var(--muted); max-width: 420px; }
table.trials td.metric { font-weight: 600; }
.status-done { color: #1a7f37; } .status-stopped-early { color: #777; }
.scatters { display: flex; flex-wrap: wrap; gap: 8px 24px; }
.scatters figure { margin: 0; }
.dot { display: inline-block; width: 9px; height: 9px; border-radius: 50%; margin: 0 4px 0 8px; }
`;

/**
 * The report page: one self-contained HTML file. Styles are inline, images are data: URLs, charts
 * are SVG markup, and there is no script at all; a Content-Security-Policy forbids every fetch
 * except data: images, so even a future edit that adds an external reference fails closed.
 */
import { perClass } from '../stages/evaluate.js';
import { VERSION } from '../util/version.js';
import { RUN_COLOURS } from './colormap.js';
import { escapeHtml as esc } from './escape.js';
import { divergingBar, type WeightTemplates } from './pictures.js';
import { type EvalPoint, finalEvals, type RunData } from './runDir.js';
import { confusionHeatMap, legend, lineChart, type Series } from './svg.js';

/** What the report shows of one run besides its run directory's data. */
export interface RunPictures {
  templates?: WeightTemplates;
  misclassified?: {
    split: string;
    step: number;
    items: { index: number; label: number; predicted: number; png?: string }[];
    /** Why the digits' pixels are missing, when they are. */
    note?: string;
  };
}

/** Line style by data split, the same in every chart: the colour says which run. */
function dashOf(split: string): string | undefined {
  if (split === 'train') return undefined;
  if (split === 'test') return '6 3';
  if (split === 'val') return '2 3';
  return '9 3 2 3';
}

const num = (n: number, digits = 4) => n.toFixed(digits);
const int = (n: number) => Math.round(n).toLocaleString('en-US');

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

export function renderReport(runs: readonly RunData[], pictures: readonly RunPictures[]): string {
  const colour = (i: number) => RUN_COLOURS[i % RUN_COLOURS.length]!;
  const lossSeries: Series[] = [];
  const accuracySeries: Series[] = [];
  runs.forEach((run, i) => {
    const splits = [...new Set(run.evals.map((e) => e.split))].map(
      (split) => [split, run.evals.filter((e) => e.split === split)] as const,
    );
    for (const [split, points] of [['train', run.train] as const, ...splits]) {
      lossSeries.push(curve(run, colour(i), split, 'loss', points));
      accuracySeries.push(curve(run, colour(i), split, 'accuracy', points));
    }
  });

  const title = `rxtrain report: ${runs.map((r) => r.label).join(', ')}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="rxtrain ${esc(VERSION)}">
<title>${esc(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>rxtrain report</h1>
<p class="muted">${runs.length} run${runs.length === 1 ? '' : 's'}, drawn from ${runs.length === 1 ? 'its run directory' : 'their run directories'} by rxtrain ${esc(VERSION)}</p>
</header>
<main>
<section id="runs">
<h2>Runs</h2>
${runsTable(runs)}
</section>
<section id="curves">
<h2>Learning curves</h2>
<p class="muted">Colour: run. Line: solid = training (mean over each logging interval), dashed = test, dotted = validation. Hover a point for its value.</p>
<figure class="chart-box">
<figcaption>Loss by step</figcaption>
${lineChart({ id: 'loss', xLabel: 'step', yLabel: 'cross-entropy loss', series: lossSeries })}
${legend(lossSeries)}
</figure>
<figure class="chart-box">
<figcaption>Accuracy by step</figcaption>
${lineChart({ id: 'accuracy', xLabel: 'step', yLabel: 'accuracy', series: accuracySeries })}
${legend(accuracySeries)}
</figure>
</section>
${runs.map((run, i) => runSection(run, i, colour(i), pictures[i] ?? {})).join('\n')}
</main>
</body>
</html>
`;
}

function runsTable(runs: readonly RunData[]): string {
  const splits = [...new Set(runs.flatMap((r) => finalEvals(r).map((e) => e.split)))];
  const head = `<tr><th>run</th><th>experiment</th><th>status</th><th>steps</th><th>epochs</th>${splits
    .map((s) => `<th>${esc(s)} accuracy</th><th>${esc(s)} loss</th>`)
    .join('')}<th>time</th><th>weights sha256</th></tr>`;
  const rows = runs.map((run, i) => {
    const last = new Map(finalEvals(run).map((e) => [e.split, e]));
    const s = run.summary;
    const steps = s?.steps ?? run.train.at(-1)?.step;
    const epochs = s?.epochs ?? run.train.at(-1)?.epoch;
    return `<tr><td><a href="#run-${i}"><span class="swatch" style="background:${RUN_COLOURS[i % RUN_COLOURS.length]}"></span>${esc(run.label)}</a></td><td>${esc(run.name)}</td><td class="status-${esc(run.status)}">${esc(run.status)}</td><td>${steps === undefined ? '' : int(steps)}</td><td>${epochs === undefined ? '' : num(epochs, 2)}</td>${splits
      .map((split) => {
        const e = last.get(split);
        return e ? `<td>${num(e.accuracy)}</td><td>${num(e.loss)}</td>` : '<td></td><td></td>';
      })
      .join(
        '',
      )}<td>${s ? `${(s.durationMs / 1000).toFixed(1)} s` : ''}</td><td><code>${esc(s?.weightsSha256?.slice(0, 12) ?? '')}</code></td></tr>`;
  });
  return `<table class="runs">${head}${rows.join('')}</table>`;
}

function runSection(run: RunData, i: number, colour: string, pictures: RunPictures): string {
  const parts = [
    `<section class="run" id="run-${i}">`,
    `<h2><span class="swatch" style="background:${colour}"></span>${esc(run.label)} <span class="muted">${esc(run.name)} · ${esc(run.status)}</span></h2>`,
    `<p class="muted"><code>${esc(run.dir)}</code></p>`,
  ];
  if (run.notes.length)
    parts.push(`<ul class="notes">${run.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>`);

  const evals = finalEvals(run).filter((e) => e.confusion && e.classes);
  parts.push('<h3>Confusion matrix</h3>');
  if (!evals.length)
    parts.push('<p class="muted">No evaluation with a confusion matrix in the event log.</p>');
  for (const e of evals) parts.push(confusionBlock(i, e));

  parts.push('<h3>Learned weights</h3>');
  parts.push(templatesBlock(i, pictures.templates));

  const m = pictures.misclassified;
  parts.push(`<h3>Misclassified ${m ? `${esc(m.split)} examples at step ${int(m.step)}` : 'examples'}</h3>`);
  parts.push(misclassifiedBlock(i, m));

  parts.push('<h3>Resolved config</h3>');
  parts.push(
    run.configText === undefined
      ? '<p class="muted">No config.yaml in the run directory.</p>'
      : `<pre class="config">${esc(run.configText)}</pre>`,
  );
  parts.push('</section>');
  return parts.join('\n');
}

function confusionBlock(i: number, e: EvalPoint): string {
  const C = e.classes!;
  const confusion = e.confusion!;
  const computed = e.precision && e.recall && e.f1 ? undefined : perClass(confusion, C);
  const precision = e.precision ?? computed!.precision;
  const recall = e.recall ?? computed!.recall;
  const f1 = e.f1 ?? computed!.f1;
  const rows: string[] = [];
  for (let c = 0; c < C; c++) {
    let support = 0;
    for (let k = 0; k < C; k++) support += confusion[c * C + k] ?? 0;
    rows.push(
      `<tr data-class="${c}"><td>${c}</td><td>${int(support)}</td><td>${num(precision[c]!)}</td><td>${num(recall[c]!)}</td><td>${num(f1[c]!)}</td></tr>`,
    );
  }
  const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return `<div class="confusion">
<figure>
<figcaption>${esc(e.split)} split at step ${int(e.step)} (${int(e.examples)} examples, accuracy ${num(e.accuracy)}). Shade: share of the true class, square-root scale.</figcaption>
${confusionHeatMap(`confusion-${i}-${e.split}`, confusion, C)}
</figure>
<table class="per-class" data-run="${i}" data-split="${esc(e.split)}">
<tr><th>class</th><th>support</th><th>precision</th><th>recall</th><th>F1</th></tr>
${rows.join('\n')}
<tr class="macro"><td>macro</td><td>${int(e.examples)}</td><td>${num(mean(precision))}</td><td>${num(mean(recall))}</td><td>${num(mean(f1))}</td></tr>
</table>
</div>`;
}

function templatesBlock(i: number, t: WeightTemplates | undefined): string {
  if (!t) return '<p class="muted">No final weights (weights.f32 and model.json) in the run directory.</p>';
  const [h, w] = t.shape;
  const scale = 96 / Math.max(h, w);
  const size = `width="${Math.round(w * scale)}" height="${Math.max(8, Math.round(h * scale))}"`;
  const signed = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(3)}`;
  const figures = t.templates.map((x) =>
    t.kind === 'classes'
      ? `<figure class="template" data-class="${x.index}"><img src="${x.png}" ${size} alt="weights of class ${x.index}"><figcaption><b>${x.index}</b>${x.bias === undefined ? '' : ` <span class="muted">bias ${signed(x.bias)}</span>`}</figcaption></figure>`
      : `<figure class="template unit" data-unit="${x.index}"><img src="${x.png}" ${size} alt="input weights of hidden unit ${x.index}"><figcaption><b>unit ${x.index}</b><br><span class="muted">strength ${x.strength!.toFixed(2)}${x.bias === undefined ? '' : `, bias ${signed(x.bias)}`}</span></figcaption></figure>`,
  );
  const caption =
    t.kind === 'classes'
      ? `Each class's weights over the ${h}×${w} input: red pixels raise the class's score, blue lower it.`
      : `The first hidden layer's ${t.templates.length} strongest of ${t.units} units (by ‖incoming weights‖·‖outgoing weights‖), each drawn as its weights over the ${h}×${w} input: red pixels excite the unit, blue inhibit it.`;
  return `<p class="muted">${caption}</p>
<div class="templates" data-run="${i}">${figures.join('')}</div>
<div class="colour-bar"><span>−${t.scale.toFixed(3)}</span><img src="${divergingBar()}" width="256" height="12" alt="colour scale"><span>+${t.scale.toFixed(3)}</span><span>(99th percentile of |w|; the largest, ${t.max.toFixed(3)}, and others beyond the scale are drawn at full colour)</span></div>`;
}

function misclassifiedBlock(i: number, m: RunPictures['misclassified']): string {
  if (!m) return '<p class="muted">No evaluation recorded misclassified examples.</p>';
  if (!m.items.length) return '<p class="muted">None: every example was classified correctly.</p>';
  const note = m.note ? `<p class="notes">${esc(m.note)}</p>` : '';
  const cells = m.items.map(
    (x) =>
      `<figure class="digit" data-index="${x.index}" data-label="${x.label}" data-predicted="${x.predicted}">${
        x.png
          ? `<img src="${x.png}" width="56" height="56" alt="${esc(m.split)} example ${x.index}: true ${x.label}, predicted ${x.predicted}">`
          : '<div class="no-image">?</div>'
      }<figcaption><span class="true">${x.label}</span> → <span class="predicted">${x.predicted}</span><br><span class="muted">#${x.index}</span></figcaption></figure>`,
  );
  return `${note}<p class="muted">The first ${m.items.length} misclassified, in ${esc(m.split)}-set order: true label → predicted.</p>
<div class="digits" data-run="${i}">${cells.join('')}</div>`;
}

const STYLE = `
:root { color-scheme: light; --muted: #666; --line: #ddd; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #222; background: #fafafa; }
header, main { max-width: 1180px; margin: 0 auto; padding: 0 20px; }
header { padding-top: 16px; }
h1 { margin: 0 0 2px; font-size: 22px; }
h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 20px 0 8px; }
.muted { color: var(--muted); font-weight: normal; }
section.run, #curves, #runs { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 4px 16px 16px; margin: 16px 0; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 10px; border-bottom: 1px solid #eee; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; }
.status-failed { color: #b2182b; } .status-interrupted, .status-running { color: #b26b00; }
.chart-box { margin: 8px 0 16px; }
.chart-box figcaption { font-weight: 600; margin-bottom: 4px; }
svg { max-width: 100%; height: auto; font: 11px system-ui, sans-serif; }
svg .grid line { stroke: #e6e6e6; } svg .grid text { fill: #555; }
svg .axis-label { fill: #333; font-size: 12px; }
svg .empty { fill: #999; font-size: 14px; }
.legend { list-style: none; padding: 0; margin: 4px 0 0 60px; display: flex; flex-wrap: wrap; gap: 4px 16px; }
.legend li { display: flex; align-items: center; gap: 6px; }
.confusion { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
.confusion figure { margin: 0; max-width: 420px; }
.confusion figcaption { color: var(--muted); margin-bottom: 4px; }
.heatmap text { font-size: 11px; }
.templates, .digits { display: flex; flex-wrap: wrap; gap: 10px; }
figure.template, figure.digit { margin: 0; text-align: center; }
img { image-rendering: pixelated; image-rendering: crisp-edges; }
figure.template img { border: 1px solid var(--line); display: block; }
figure.digit img, .no-image { border: 1px solid var(--line); display: block; width: 56px; height: 56px; }
.no-image { line-height: 56px; color: #bbb; }
figure.digit figcaption { font-size: 12px; }
.true { color: #1a7f37; font-weight: 600; } .predicted { color: #b2182b; font-weight: 600; }
.colour-bar { display: flex; align-items: center; gap: 8px; margin-top: 10px; color: var(--muted); }
.colour-bar img { border: 1px solid var(--line); }
.notes { color: #8a5a00; }
pre.config { background: #f6f8fa; border: 1px solid #eee; padding: 10px; overflow: auto; font-size: 12px; }
`;

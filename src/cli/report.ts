import { resolve } from 'node:path';
import { defaultCacheDir } from '../pipeline/run.js';
import { buildReport } from '../report/report.js';
import { buildSweepReport, isSweepDir } from '../report/sweepReport.js';
import { writeFileAtomic } from '../util/atomicFile.js';
import { RxtrainError } from '../util/errors.js';
import type { Command } from './command.js';

export const reportCommand: Command = {
  name: 'report',
  help: `Usage: rxtrain report <run-dir>… [--out FILE] [--cache DIR]
       rxtrain report <sweep-dir> [--out FILE]

Writes one HTML file that needs nothing else (no network, no script): the runs, named by the
settings in which they differ, and a table of those settings; the training loss and the
test/validation accuracy by step, with the curves of several run directories overlaid and the
best step and early stopping marked; and for each run the last confusion matrix as a heat map with
per-class precision, recall and F1, the learned weight templates as images, the misclassified test
examples with true and predicted labels, and the resolved config, folded away. The examples' pixels are read by running the run's data stages
(local for embedded:mnist; downloads come from the cache). Given a sweep directory, it writes the
sweep's report instead: the trials ranked by the metric, the metric against each parameter, the
best trials' curves, and the best trial's confusion matrix and weights.

  --out FILE   where to write the page (default report.html)
  --cache DIR  download and stage cache (default $RXTRAIN_CACHE or ~/.cache/rxtrain)`,
  options: {
    out: { type: 'string', short: 'o' },
    cache: { type: 'string' },
  },
  async run(positionals, values, io) {
    if (positionals.length === 0)
      throw new RxtrainError('E_USAGE', 'usage: rxtrain report <run-dir>… [--out report.html]');
    const out = resolve((values.out as string | undefined) ?? 'report.html');
    if (positionals.length === 1 && isSweepDir(positionals[0]!)) {
      const sweep = buildSweepReport(positionals[0]!, (message) =>
        io.stderr(`rxtrain: warning: ${message}\n`),
      );
      writeFileAtomic(out, sweep.html);
      io.stdout(
        `wrote ${out} (a sweep of ${sweep.trials} trials, ${Math.round(Buffer.byteLength(sweep.html) / 1024)} KB)\n`,
      );
      return 0;
    }
    const { html, runs } = await buildReport(positionals, {
      cacheDir: (values.cache as string | undefined) ?? defaultCacheDir(),
      onWarning: (message) => io.stderr(`rxtrain: warning: ${message}\n`),
    });
    writeFileAtomic(out, html);
    io.stdout(
      `wrote ${out} (${runs.length} run${runs.length === 1 ? '' : 's'}, ${Math.round(Buffer.byteLength(html) / 1024)} KB)\n`,
    );
    return 0;
  },
};

/**
 * `rxtrain report`: read one or more run directories and write one self-contained HTML file with
 * their learning curves overlaid, and for each run its confusion matrix with per-class scores,
 * its learned weight templates, its misclassified examples, and its resolved config.
 */

import type { StageDefinition } from '../pipeline/stage.js';
import { describeError } from '../util/errors.js';
import { type Comparison, compareSettings, flattenConfig, runLabels } from './compare.js';
import { pickExamples } from './examples.js';
import { type RunPictures, renderReport } from './page.js';
import { examplePng, imageShape, weightTemplates } from './pictures.js';
import { finalEvals, type RunData, readRunDir } from './runDir.js';

export interface ReportOptions {
  /** Where the run's data stages find their downloads (the run's own cache). */
  cacheDir: string;
  /** Stage definitions for loading the runs' configs; the built-in ones by default. */
  stages?: readonly StageDefinition[];
  /** Told about anything the report had to leave out (missing pixels, …). */
  onWarning?: (message: string) => void;
}

export interface Report {
  html: string;
  runs: RunData[];
}

export async function buildReport(dirs: readonly string[], options: ReportOptions): Promise<Report> {
  const runs = dirs.map((dir, i) => readRunDir(dir, String(i)));
  const comparison = labelRuns(runs);
  const pictures: RunPictures[] = [];
  for (const run of runs) pictures.push(await picturesOf(run, options));
  return { html: renderReport(runs, pictures, comparison), runs };
}

/** Name each run by the settings in which it differs from the others (compare.ts). */
export function labelRuns(runs: RunData[]): Comparison {
  const comparison = compareSettings(runs.map((r) => flattenConfig(r.configText)));
  const labels = runLabels(
    runs.map((r) => r.dirName),
    comparison,
  );
  runs.forEach((run, i) => {
    run.label = labels[i]!;
  });
  return comparison;
}

/** The pictures of a run: its weight templates and its misclassified examples' pixels. */
export async function picturesOf(run: RunData, options: ReportOptions): Promise<RunPictures> {
  // The test split first: its indices name examples of a file; a held-out split's depend on the sampler.
  const evals = finalEvals(run).filter((e) => e.misclassified);
  const last = evals.find((e) => e.split === 'test') ?? evals[0];
  let shape: readonly number[] | undefined;
  let misclassified: RunPictures['misclassified'];
  if (last) {
    const items: NonNullable<RunPictures['misclassified']>['items'] = last.misclassified!.map((m) => ({
      ...m,
    }));
    misclassified = { split: last.split, step: last.step, items };
    if (items.length && run.configFile) {
      try {
        const picked = await pickExamples(
          run.configFile,
          last.split,
          items.map((m) => m.index),
          options,
        );
        shape = picked.shape;
        const [h, w] = imageShape(product(picked.shape), picked.shape);
        for (const item of items) {
          const values = picked.rows.get(item.index);
          if (values && values.length === h * w) item.png = examplePng(values, [h, w]);
        }
        const missing = items.filter((m) => !m.png).length;
        if (missing) misclassified.note = `${missing} of the examples were not found in the data.`;
      } catch (error) {
        misclassified.note = `The examples' pixels could not be read from the run's data stages: ${describeError(error)}`;
      }
    } else if (items.length) {
      misclassified.note = 'No config.yaml in the run directory, so the pixels cannot be read.';
    }
    if (misclassified.note) options.onWarning?.(`${run.label}: ${misclassified.note}`);
  }
  const templates = run.model
    ? weightTemplates(run.model, shape ?? run.model.architecture.inputShape)
    : undefined;
  return { templates, misclassified };
}

function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

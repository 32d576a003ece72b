/**
 * The evaluate stage: per-class scores, a validation split held out by the sampler, the best step
 * by a chosen metric, and early stopping that ends training at the same step on every run.
 */
import test from 'ava';
import { evaluateSettings, macroF1, perClass } from '../src/stages/evaluate.js';
import { mnistExperiment, runPipeline } from './helpers/pipeline.js';

test('per-class precision, recall and F1 from a confusion matrix', (t) => {
  // rows: true class; columns: predicted
  const confusion = [5, 1, 0, 2, 3, 1, 0, 0, 4];
  const { precision, recall, f1 } = perClass(confusion, 3);
  t.deepEqual(precision, [5 / 7, 3 / 4, 4 / 5]);
  t.deepEqual(recall, [5 / 6, 3 / 6, 4 / 4]);
  t.is(f1[0], (2 * (5 / 7) * (5 / 6)) / (5 / 7 + 5 / 6));
  t.is(macroF1(confusion, 3), (f1[0]! + f1[1]! + f1[2]!) / 3);
  t.deepEqual(perClass([0, 0, 0, 0], 2), { precision: [0, 0], recall: [0, 0], f1: [0, 0] });
});

test('evaluate settings: the metric must name an evaluated split, early stopping needs a schedule', (t) => {
  t.true(evaluateSettings.safeParse({ splits: ['val', 'test'], metric: 'val.loss' }).success);
  t.false(evaluateSettings.safeParse({ splits: ['test'], metric: 'val.loss' }).success);
  t.false(evaluateSettings.safeParse({ metric: 'test.precision' }).success);
  t.false(evaluateSettings.safeParse({ patience: 3, every: 0 }).success);
});

const experiment = (evaluate: string, steps: number) =>
  mnistExperiment(
    'name: evaluate\nseed: 2',
    '    holdout: { size: 2000 }',
    `  - type: sgd
    batchSize: 64
    lr: 0.5
    steps: ${steps}
  - type: evaluate
${evaluate}`,
  );

interface EvalEvent {
  type: 'eval';
  split: string;
  step: number;
  examples: number;
  accuracy: number;
  loss: number;
  precision: number[];
  f1: number[];
  best?: { metric: string; step: number; value: number };
  earlyStop?: string;
}

test('a held-out validation split is evaluated beside the test set, with the best step', async (t) => {
  const run = await runPipeline(
    experiment('    every: 100\n    splits: [val, test]\n    metric: val.accuracy', 300),
    undefined,
  );
  const evals = run.events.filter((e) => e.type === 'eval') as unknown as EvalEvent[];
  t.deepEqual(
    evals.map((e) => `${e.split}@${e.step}`),
    ['val@0', 'test@0', 'val@100', 'test@100', 'val@200', 'test@200', 'val@300', 'test@300'],
  );
  for (const e of evals) {
    t.is(e.examples, e.split === 'val' ? 2000 : 10000);
    t.is(e.precision.length, 10);
    t.is(e.f1.length, 10);
  }
  const val = evals.filter((e) => e.split === 'val');
  const bestSoFar = val.reduce((b, e) => (e.accuracy > b.accuracy ? e : b));
  t.deepEqual(evals.at(-1)!.best, {
    metric: 'val.accuracy',
    step: bestSoFar.step,
    value: bestSoFar.accuracy,
  });
  t.true(bestSoFar.accuracy > 0.85);
  t.deepEqual(
    run.final.results.map((r) => r.split),
    ['val', 'test'],
  );
});

test('early stopping ends training at the same step on every run, after `patience` evaluations without progress', async (t) => {
  const yaml = experiment(
    '    every: 25\n    splits: [val, test]\n    metric: val.loss\n    patience: 2\n    minDelta: 0.01',
    3000,
  );
  const [a, b] = [await runPipeline(yaml), await runPipeline(yaml)];
  t.true(a.final.step < 3000, `stopped at ${a.final.step}`);
  t.is(a.final.step, b.final.step);
  t.deepEqual(Buffer.from(a.final.weights.buffer), Buffer.from(b.final.weights.buffer));
  t.regex(a.final.stopReason ?? '', /val\.loss has not improved for 2 evaluations/);
  const evals = a.events.filter((e) => e.type === 'eval' && e.split === 'val') as unknown as EvalEvent[];
  const last = evals.at(-1)!;
  t.is(last.step, a.final.step, 'training stopped at the evaluation that decided it, evaluated once');
  t.truthy(last.earlyStop);
  t.is(last.best!.step, a.final.step - 2 * 25);
  t.is(evals.filter((e) => e.step === last.step).length, 1);
  t.deepEqual(
    a.final.results.map((r) => r.split),
    ['val', 'test'],
  );
});

/**
 * The sgd stage: its settings, exact resume from a checkpoint barrier with momentum and a schedule,
 * and batches that span sample blocks.
 */
import test from 'ava';
import { sgdSettings } from '../src/stages/sgd.js';
import { type Captured, mnistExperiment, runPipeline } from './helpers/pipeline.js';

test('sgd settings: defaults, shorthands and cross-field checks', (t) => {
  const plain = sgdSettings.parse({});
  t.deepEqual(plain.schedule, { type: 'constant' });
  t.is(plain.momentum, 0);
  t.is(plain.clipNorm, 0);
  t.deepEqual(sgdSettings.parse({ schedule: 'cosine' }).schedule, { type: 'cosine', min: 0 });
  t.deepEqual(sgdSettings.parse({ schedule: { type: 'step' } }).schedule, {
    type: 'step',
    every: 1,
    gamma: 0.1,
  });
  const nesterov = sgdSettings.safeParse({ nesterov: true });
  t.false(nesterov.success);
  t.true(sgdSettings.safeParse({ nesterov: true, momentum: 0.9 }).success);
  t.false(sgdSettings.safeParse({ momentum: 1 }).success);
  t.false(sgdSettings.safeParse({ schedule: 'linear' }).success);
  t.deepEqual(plain.model, { type: 'softmax' });
  t.deepEqual(sgdSettings.parse({ model: 'mlp' }).model, {
    type: 'mlp',
    hidden: [128],
    activation: 'relu',
    init: 'he',
    std: 0.01,
  });
  t.false(sgdSettings.safeParse({ model: { type: 'mlp', activation: 'gelu' } }).success);
  t.false(sgdSettings.safeParse({ model: { type: 'mlp', hidden: [] } }).success);
  t.false(
    sgdSettings.safeParse({ model: { type: 'softmax', hidden: [10] } }).success,
    'unknown keys are errors',
  );
});

const resumable = (sgd: string) =>
  mnistExperiment(
    'name: resume\nseed: 4\ncheckpoint: { every: 70, atEnd: false }',
    '    blockSize: 256',
    `  - type: sgd
${sgd}
  - type: evaluate
    every: 100`,
  );

for (const [name, sgd] of [
  [
    'momentum, a cosine schedule, batches spanning blocks',
    '    batchSize: 100\n    lr: 0.5\n    steps: 230\n    momentum: 0.9\n    schedule: cosine\n    warmup: 0.05',
  ],
  [
    'an MLP (two tanh layers) with momentum, clipping, a cosine schedule',
    '    model: { type: mlp, hidden: [24, 12], activation: tanh, init: xavier }\n    batchSize: 100\n    lr: 0.2\n    steps: 230\n    momentum: 0.9\n    clipNorm: 5\n    schedule: cosine',
  ],
  [
    'Nesterov, weight decay, clipping, a step schedule',
    '    batchSize: 64\n    lr: 0.3\n    steps: 230\n    momentum: 0.5\n    nesterov: true\n    weightDecay: 0.001\n    clipNorm: 1\n    schedule: { type: step, every: 0.1, gamma: 0.5 }',
  ],
]) {
  test(`a run resumed from a checkpoint barrier ends with bit-identical weights: ${name}`, async (t) => {
    const yaml = resumable(sgd);
    const full = await runPipeline(yaml);
    t.is(full.final.step, 230);
    t.deepEqual(
      full.checkpoints.map((c) => c.step),
      [70, 140, 210],
    );
    const cut = full.checkpoints[1]!;
    const sgdState = cut.states['sgd'] as { velocity?: Float32Array };
    t.true(sgdState.velocity instanceof Float32Array, 'the momentum buffer is in the state');
    const restored = { ...cut.states, sgd: { ...cut.states['sgd']!, weights: cut.weights } };
    const resumed = await runPipeline(yaml, restored);
    t.is(resumed.final.step, 230);
    t.deepEqual(Buffer.from(resumed.final.weights.buffer), Buffer.from(full.final.weights.buffer));
    const lr = (c: Captured) =>
      c.events.filter((e) => e.type === 'train' && e.step === 200).map((e) => (e as { lr: number }).lr);
    t.deepEqual(lr(resumed), lr(full), 'the schedule continues where it was');
  });
}

test('an MLP in the state and the snapshot: its hidden layers, every parameter; a softmax config cannot resume it', async (t) => {
  const mlp = resumable('    model: { type: mlp, hidden: [16] }\n    batchSize: 64\n    steps: 80');
  const run = await runPipeline(mlp);
  const state = run.checkpoints[0]!.states['sgd'] as {
    rows: number;
    hidden?: number[];
    weights: Float32Array;
  };
  t.is(state.rows, 785);
  t.deepEqual(state.hidden, [16]);
  t.is(state.weights.length, 785 * 16 + 17 * 10);
  t.deepEqual(run.final.architecture, {
    type: 'mlp',
    inputShape: [28, 28],
    bias: true,
    hidden: [16],
    activation: 'relu',
    classes: 10,
  });
  t.true(run.final.results[0]!.accuracy > 0.5, 'it learns');
  const softmax = resumable('    batchSize: 64\n    steps: 80');
  const error = await t.throwsAsync(runPipeline(softmax, run.checkpoints[0]!.states));
  t.regex(
    error!.message,
    /the checkpoint's model is 785×10 with hidden layers \[16\], the data and settings give 785×10/,
  );
});

test('a model without momentum keeps no velocity in its state', async (t) => {
  const run = await runPipeline(resumable('    batchSize: 64\n    steps: 80'));
  t.is((run.checkpoints[0]!.states['sgd'] as { velocity?: unknown }).velocity, undefined);
  t.is(run.final.step, 80);
});

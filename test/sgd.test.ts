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

test('a model without momentum keeps no velocity in its state', async (t) => {
  const run = await runPipeline(resumable('    batchSize: 64\n    steps: 80'));
  t.is((run.checkpoints[0]!.states['sgd'] as { velocity?: unknown }).velocity, undefined);
  t.is(run.final.step, 80);
});

/**
 * A sampler hands its table of examples over to the trainer after it (`SampleBlock.reusable`)
 * only when no stage before it reads examples' bytes once it has handed them on (built-in data
 * stages: `keepsNoInput`) and the stage after it takes sample blocks as a trainer does
 * (`takesSampleTables`); and a run whose table is handed over ends with the same weights to the
 * bit as one whose table is not.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { z } from 'zod';
import { mapFlow } from '../src/flow/index.js';
import { encodeIdx } from '../src/formats/idx.js';
import { configFromObject } from '../src/pipeline/config.js';
import type { Message } from '../src/pipeline/messages.js';
import { runExperiment } from '../src/pipeline/run.js';
import { defineStage } from '../src/pipeline/stage.js';
import { builtinStages } from '../src/stages/index.js';
import { Prng } from '../src/util/random.js';
import { tempDir } from './helpers/index.js';
import { testPipeline } from './helpers/pipeline.js';

/** MNIST-shaped IDX files of random 8×8 digits, ~20% non-zero, in a fresh directory. */
function dataset(): string {
  const dir = tempDir();
  const rng = new Prng(21);
  for (const [split, n] of [
    ['train', 300],
    ['t10k', 60],
  ] as const) {
    const pixels = Array.from({ length: n * 64 }, () => (rng.nextFloat() < 0.2 ? 1 + rng.int(255) : 0));
    writeFileSync(join(dir, `${split}-images-idx3-ubyte`), encodeIdx('u8', [n, 8, 8], pixels));
    const labels = Array.from({ length: n }, () => rng.int(4));
    writeFileSync(join(dir, `${split}-labels-idx1-ubyte`), encodeIdx('u8', [n], labels));
  }
  return dir;
}

/** A user stage that passes every message on (and, saying nothing, may keep what it sees). */
const passOn = defineStage({
  type: 'passOn',
  summary: 'pass every message on',
  settings: z.strictObject({}),
  create: () => (input) => mapFlow<Message, Message>(input, (m) => m),
});

/**
 * A stage that takes sample blocks as a trainer does, recording whether each was handed over;
 * unlike a trainer it passes them on (to sgd), which only a test may do.
 */
function recorder(seen: boolean[]) {
  return defineStage({
    type: 'recordSamples',
    summary: 'record the hand-over of sample blocks',
    settings: z.strictObject({}),
    takesSampleTables: true,
    create: () => (input) =>
      mapFlow<Message, Message>(input, (m) => {
        if (m.kind === 'samples') seen.push(m.reusable === true);
        return m;
      }),
  });
}

/** What buildPipeline tells a stage in the sampler's place, between `before` and `after`. */
async function toldAt(dir: string, before: string[], after: string[]): Promise<boolean | undefined> {
  let told: boolean | undefined;
  const probe = defineStage({
    type: 'probe',
    summary: 'record what the context says',
    settings: z.strictObject({}),
    create: (_settings, ctx) => {
      told = ctx.samplesHandedOver;
      return (input) => input;
    },
  });
  const config = await configFromObject(
    {
      name: 'handover',
      stages: [
        { type: 'fetch', url: dir },
        { type: 'decodeIdx', classes: 4 },
        ...before.map((type) => ({ type })),
        { type: 'probe' },
        ...after.map((type) => ({ type })),
      ],
    },
    { stages: [...builtinStages, passOn, probe, recorder([])] },
  );
  testPipeline(config);
  return told;
}

test('a sampler may hand its table over only to a trainer, and only past stages that keep nothing', async (t) => {
  const dir = dataset();
  t.true(await toldAt(dir, ['normalise'], ['recordSamples']), 'built-in data stages, then a trainer');
  t.false(await toldAt(dir, ['passOn', 'normalise'], ['recordSamples']), 'a user stage before the sampler');
  t.false(await toldAt(dir, ['normalise'], ['passOn', 'recordSamples']), 'a user stage after the sampler');
  t.false(await toldAt(dir, ['normalise'], []), 'nothing after the sampler');
});

test('a run whose table is handed over ends with the same weights to the bit', async (t) => {
  const dir = dataset();
  const run = async (middle: string[]) => {
    const seen: boolean[] = [];
    const config = await configFromObject(
      {
        name: 'handover-run',
        stages: [
          { type: 'fetch', url: dir },
          { type: 'decodeIdx', classes: 4 },
          ...middle.map((type) => ({ type })),
          { type: 'normalise' },
          { type: 'shuffle', holdout: { fraction: 0.2 }, blockSize: 50 },
          { type: 'recordSamples' },
          { type: 'sgd', batchSize: 16, lr: 0.5, epochs: 3 },
          { type: 'evaluate', every: 20, splits: ['val', 'test'] },
        ],
      },
      { stages: [...builtinStages, passOn, recorder(seen)] },
    );
    const runDir = join(tempDir(), 'run');
    const summary = await runExperiment({ config, runDir, cacheDir: tempDir() });
    return { weights: readFileSync(join(runDir, 'weights.f32')), summary, seen };
  };
  const handed = await run([]);
  const kept = await run(['passOn']);
  t.is(handed.summary.status, 'completed');
  t.true(handed.seen.length > 0 && handed.seen.every((r) => r), 'the table was handed over');
  t.true(kept.seen.length > 0 && kept.seen.every((r) => !r), 'the table was not handed over');
  t.true(handed.weights.equals(kept.weights), 'the same weights');
  t.deepEqual(handed.summary.test, kept.summary.test);
});

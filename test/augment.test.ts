/**
 * The augment stage: the kernel against hand-computed images; blocks of their own that leave the
 * sampler's shared table alone; a fresh variant of a sample in every pass, the same variant
 * wherever the block boundaries fall; and, end to end on a small run, the same weights twice and
 * after a stop and resume.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { DEFAULT_SYNTH, writeSynthDataset } from '../src/formats/synth.js';
import { augmentSample, inverseNormalCdf } from '../src/kernels/augment.js';
import { configFromObject } from '../src/pipeline/config.js';
import type { SampleBlock } from '../src/pipeline/messages.js';
import { resumeExperiment } from '../src/pipeline/resume.js';
import { runExperiment } from '../src/pipeline/run.js';
import { augmentBlock } from '../src/stages/augment.js';
import { builtinStages } from '../src/stages/index.js';
import { ConfigError } from '../src/util/errors.js';
import { Prng } from '../src/util/random.js';
import { ROOT } from './helpers/index.js';
import { scratchDir } from './helpers/remoteRun.js';

/** A generator that answers the shift and the flip as told (the kernel draws dy, dx, then flip). */
function scripted(dy: number, dx: number, k: number, flip = false): Prng {
  const ints = [dy + k, dx + k];
  return { int: () => ints.shift()!, nextUint32: () => (flip ? 0xffffffff : 0) } as unknown as Prng;
}

// A 3×4 image, one channel, rows 1 2 3 4 / 5 6 7 8 / 9 10 11 12.
const image = Uint8Array.from({ length: 12 }, (_, i) => i + 1);
const layout = { channels: 1, height: 3, width: 4 };

test('translation moves pixels by (dy, dx) and fills with zeros; flip mirrors each row', (t) => {
  const out = new Uint8Array(12);
  augmentSample(image, 0, out, 0, layout, { translate: 1, flip: false, noise: 0 }, scripted(1, -1, 1));
  // down one row, left one column
  t.deepEqual(Array.from(out), [0, 0, 0, 0, 2, 3, 4, 0, 6, 7, 8, 0]);
  augmentSample(image, 0, out, 0, layout, { translate: 0, flip: true, noise: 0 }, scripted(0, 0, 0, true));
  t.deepEqual(Array.from(out), [4, 3, 2, 1, 8, 7, 6, 5, 12, 11, 10, 9]);
  augmentSample(image, 0, out, 0, layout, { translate: 1, flip: true, noise: 0 }, scripted(0, 1, 1, true));
  // mirrored, then right one column
  t.deepEqual(Array.from(out), [0, 4, 3, 2, 0, 8, 7, 6, 0, 12, 11, 10]);
  // Two channels move together.
  const two = Uint8Array.from({ length: 24 }, (_, i) => (i % 12) + 1);
  const out2 = new Uint8Array(24);
  augmentSample(
    two,
    0,
    out2,
    0,
    { ...layout, channels: 2 },
    { translate: 1, flip: false, noise: 0 },
    scripted(-1, 0, 1),
  );
  t.deepEqual(Array.from(out2.subarray(12)), [5, 6, 7, 8, 9, 10, 11, 12, 0, 0, 0, 0]);
});

test('noise is normal: mean 0 and standard deviation sigma over many values', (t) => {
  t.is(inverseNormalCdf(0.5), 0);
  t.true(Math.abs(inverseNormalCdf(0.975) - 1.959964) < 1e-6);
  const n = 100_000;
  const zeros = new Uint8Array(n);
  const out = new Float32Array(n);
  augmentSample(
    zeros,
    0,
    out,
    0,
    { channels: 1, height: 1, width: n },
    { translate: 0, flip: false, noise: 2 },
    new Prng(3),
  );
  let sum = 0;
  let squares = 0;
  for (const v of out) {
    sum += v;
    squares += v * v;
  }
  const mean = sum / n;
  const std = Math.sqrt(squares / n - mean * mean);
  t.true(Math.abs(mean) < 0.03, `mean ${mean}`);
  t.true(Math.abs(std - 2) < 0.03, `std ${std}`);
});

/** A block as the permutation sampler sends it: row numbers into a table every block shares. */
function tableBlock(table: Uint8Array, rows: number[], epoch: number, index: number): SampleBlock {
  return {
    kind: 'samples',
    sampler: 'shuffle',
    epoch,
    position: { epoch, cursor: index },
    index,
    population: 100,
    count: rows.length,
    width: 12,
    shape: [3, 4],
    data: table,
    labels: Int32Array.from({ length: table.length / 12 }, (_, i) => i % 10),
    rows: Int32Array.from(rows),
    classes: 10,
    transform: { width: 12, scale: new Float32Array(12).fill(1), shift: null, bias: true },
  };
}

test('augmented blocks hold their own data; each pass differs; block boundaries do not matter', (t) => {
  const table = Uint8Array.from({ length: 12 * 100 }, (_, i) => (i * 37) % 251);
  const before = table.slice();
  const plan = { translate: 1, flip: true, noise: 0 };
  const rows = Array.from({ length: 64 }, (_, i) => (i * 7) % 100);
  const sample = (b: SampleBlock, i: number) => Array.from(b.data.subarray(i * 12, (i + 1) * 12));

  const pass0 = augmentBlock(tableBlock(table, rows, 0, 0), { channels: 1, height: 3, width: 4 }, plan, 42);
  t.is(pass0.rows, undefined, 'no longer indexes the shared table');
  t.is(pass0.data.length, 64 * 12);
  t.deepEqual(
    Array.from(pass0.labels),
    rows.map((r) => r % 10),
  );
  t.deepEqual(table, before, 'the sampler’s table is untouched');
  t.deepEqual(pass0.position, { epoch: 0, cursor: 0 }, 'the read point stays the sampler’s');

  // The same rows at the same places of the next pass: other variants.
  const pass1 = augmentBlock(tableBlock(table, rows, 1, 0), { channels: 1, height: 3, width: 4 }, plan, 42);
  const changed = rows.filter((_, i) => sample(pass0, i).join() !== sample(pass1, i).join()).length;
  t.true(changed > 40, `${changed} of 64 samples differ between passes`);

  // A resumed sampler cuts blocks elsewhere (this one starts at sample 20 of the pass).
  const recut = augmentBlock(
    tableBlock(table, rows.slice(20), 0, 20),
    { channels: 1, height: 3, width: 4 },
    plan,
    42,
  );
  for (let i = 0; i < 44; i++) t.deepEqual(sample(recut, i), sample(pass0, 20 + i));
  // And the same seed, pass and index give the same variant again.
  t.deepEqual(
    augmentBlock(tableBlock(table, rows, 0, 0), { channels: 1, height: 3, width: 4 }, plan, 42).data,
    pass0.data,
  );
});

/** A small run's config with `stage` between the sampler and sgd (none: without it). */
async function smallExperiment(root: string, stage: Record<string, unknown> | undefined) {
  const data = join(root, 'data');
  if (!existsSync(data))
    await writeSynthDataset(data, { ...DEFAULT_SYNTH, train: 1200, test: 300, seed: 11 });
  const stages = [
    { type: 'fetch', url: data },
    { type: 'untar' },
    { type: 'decodeIdx' },
    { type: 'normalise' },
    { type: 'shuffle', blockSize: 50 },
    ...(stage ? [stage] : []),
    { type: 'sgd', batchSize: 32, epochs: 2 },
    { type: 'evaluate', every: 0 },
  ];
  return configFromObject(
    { name: 'augment-small', seed: 0, modules: ['./cutout-stage.js'], checkpoint: { every: 20 }, stages },
    { stages: builtinStages, baseDir: join(ROOT, 'examples') },
  );
}

for (const stage of [
  { type: 'augment', translate: 2, noise: 20 },
  { type: 'cutout', size: 6 }, // the README's user-module example
]) {
  test(`${stage.type}: the same weights twice, and after a stop and resume mid-block`, async (t) => {
    const root = scratchDir(t);
    const config = await smallExperiment(root, stage);
    const cacheDir = join(root, 'cache');
    const a = await runExperiment({ config, runDir: join(root, 'a'), cacheDir });
    const b = await runExperiment({ config, runDir: join(root, 'b'), cacheDir });
    t.is(a.status, 'completed');
    t.is(a.steps, 76);
    t.is(a.weightsSha256, b.weightsSha256);
    t.true(a.test!.accuracy > 0.5, `accuracy ${a.test!.accuracy}`);

    // Stopped once the checkpoint of step 40 is written (pass 2, inside a block), then resumed.
    const stop = new AbortController();
    const dir = join(root, 'stopped');
    const stopped = await runExperiment({
      config,
      runDir: dir,
      cacheDir,
      signal: stop.signal,
      onEvent: (e) => {
        if (e.type === 'checkpoint' && e.step >= 40) stop.abort('SIGINT');
      },
    });
    t.is(stopped.status, 'interrupted');
    const resumed = await resumeExperiment(dir, { stages: builtinStages, cacheDir });
    t.true(resumed.resumedFrom! >= 40 && resumed.resumedFrom! < 76, `resumed from ${resumed.resumedFrom}`);
    t.is(resumed.weightsSha256, a.weightsSha256);

    // Without the stage: other weights (it did something).
    const plain = await runExperiment({
      config: await smallExperiment(root, undefined),
      runDir: join(root, 'c'),
      cacheDir,
    });
    t.not(plain.weightsSha256, a.weightsSha256);
  });
}

test('augment before the sampler is a wiring error: there are no samples there yet', async (t) => {
  const stages = [{ type: 'fetch' }, { type: 'untar' }, { type: 'decodeIdx' }, { type: 'normalise' }];
  const error = await t.throwsAsync(
    configFromObject(
      {
        name: 'x',
        stages: [...stages, { type: 'augment', translate: 1 }, { type: 'shuffle' }, { type: 'sgd' }],
      },
      { stages: builtinStages },
    ),
    { instanceOf: ConfigError },
  );
  t.regex(
    error?.message ?? '',
    /"samples" is produced by no stage before augment \(.*shuffle at stages\[5\] produces it, but only after augment\)/,
  );
});

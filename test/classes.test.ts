/**
 * Classes and shapes from the data: `decodeIdx.classes: auto` (the largest training label + 1,
 * fixed before any example leaves the decoder), class names, labels checked in every split,
 * EMNIST's transposed images, and a 5-class dataset giving a 5-output model whose model.json
 * records its input shape and classes, with a warning for classes no training example has.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { fromArray } from '../src/flow/index.js';
import { encodeIdx } from '../src/formats/idx.js';
import { DEFAULT_SYNTH, writeSynthDataset } from '../src/formats/synth.js';
import { configFromObject } from '../src/pipeline/config.js';
import type { RxtrainEvent } from '../src/pipeline/events.js';
import type { Examples, Message } from '../src/pipeline/messages.js';
import { runExperiment } from '../src/pipeline/run.js';
import { decodeIdxSettings, decodeIdxStage } from '../src/stages/decodeIdx.js';
import { builtinStages } from '../src/stages/index.js';
import { ConfigError, IdxError } from '../src/util/errors.js';
import { collect } from './helpers/index.js';
import { scratchDir } from './helpers/remoteRun.js';
import { fileChunks, stageContext } from './helpers/stageContext.js';

const SPLITS = {
  train: { images: '**/train-images', labels: '**/train-labels' },
  test: { images: '**/test-images', labels: '**/test-labels' },
};

/** Feed files, in this order, to decodeIdx as 5-byte chunks. */
function decode(files: [string, Uint8Array][], settings: Record<string, unknown> = {}) {
  const chunks = files.flatMap(([file, data]) => fileChunks(file, data, 5));
  const parsed = decodeIdxSettings.parse({ splits: SPLITS, ...settings });
  return collect<Message>(
    decodeIdxStage.create(parsed, stageContext('decodeIdx'))(fromArray<Message>(chunks)),
  );
}

const labels = (...values: number[]) => encodeIdx('u8', [values.length], values);
const images = (n: number, rows = 2, cols = 3) =>
  encodeIdx(
    'u8',
    [n, rows, cols],
    Array.from({ length: n * rows * cols }, (_, i) => i % 251),
  );
const examplesOf = (out: Message[], split: string) =>
  out.filter((m): m is Examples => m.kind === 'examples' && m.split === split);

test('classes: auto is the largest train label + 1, in every split, before the first example', async (t) => {
  // The test split and the train images arrive before the train labels: all of it waits.
  const out = await decode([
    ['d/test-labels', labels(0, 3)],
    ['d/test-images', images(2)],
    ['d/train-images', images(4)],
    ['d/train-labels', labels(4, 0, 2, 1)],
  ]);
  const all = out.filter((m): m is Examples => m.kind === 'examples');
  t.true(all.length > 0);
  t.true(
    all.every((e) => e.classes === 5),
    'every batch says 5 classes',
  );
  t.deepEqual(
    examplesOf(out, 'test').flatMap((e) => Array.from(e.labels)),
    [0, 3],
  );
  t.deepEqual(
    examplesOf(out, 'train').flatMap((e) => Array.from(e.labels)),
    [4, 0, 2, 1],
  );
  t.false('classNames' in all[0]!);
});

test('a test label beyond the training classes is an error naming the file and byte offset', async (t) => {
  const error = await t.throwsAsync(
    decode([
      ['d/train-labels', labels(0, 1, 2)],
      ['d/train-images', images(3)],
      ['d/test-labels', labels(1, 2, 3)],
      ['d/test-images', images(3)],
    ]),
    { instanceOf: IdxError },
  );
  t.is(error?.code, 'E_IDX_LABEL');
  t.is(error?.file, 'src/d/test-labels');
  t.is(error?.offset, 8 + 2);
  t.regex(
    error?.message ?? '',
    /label 3 of example 2 is outside \[0, 3\) \(decodeIdx\.classes: auto, the largest train label \+ 1\)/,
  );
  // …also when the test labels came first and waited for the count.
  const early = await t.throwsAsync(
    decode([
      ['d/test-labels', labels(1, 2, 3)],
      ['d/train-labels', labels(0, 1, 2)],
    ]),
    { instanceOf: IdxError },
  );
  t.is(early?.file, 'src/d/test-labels');
  t.is(early?.offset, 10);
});

test('class names fix the count; a number must agree with them; classesFrom must be a split', async (t) => {
  const names = ['cat', 'dog', 'emu', 'fox'];
  const out = await decode(
    [
      ['d/train-labels', labels(0, 1)],
      ['d/train-images', images(2)],
      ['d/test-labels', labels(1)],
      ['d/test-images', images(1)],
    ],
    { classNames: names },
  );
  const batch = examplesOf(out, 'train')[0]!;
  t.is(batch.classes, 4, 'as many classes as names, even though train uses two');
  t.deepEqual(batch.classNames, names);
  t.throws(() => decodeIdxSettings.parse({ classes: 3, classNames: names }), {
    message: /4 names for 3 classes/,
  });
  t.throws(() => decodeIdxSettings.parse({ splits: SPLITS, classesFrom: 'training' }), {
    message: /split \\?"training\\?", which is not among the splits \(train, test\)/,
  });
});

test('transpose reads EMNIST-style images back upright and swaps the shape', async (t) => {
  // Stored column by column: the header says [1, 3, 2] for an image that is 2 rows × 3 columns.
  const upright = [1, 2, 3, 4, 5, 6];
  const stored = encodeIdx('u8', [1, 3, 2], [1, 4, 2, 5, 3, 6]);
  const out = await decode(
    [
      ['d/train-labels', labels(1)],
      ['d/train-images', stored],
      ['d/test-labels', labels(0)],
      ['d/test-images', stored],
    ],
    { transpose: true },
  );
  const batch = examplesOf(out, 'train')[0]!;
  t.deepEqual(batch.shape, [2, 3]);
  t.deepEqual(Array.from(batch.data), upright);
});

test('a 5-class dataset trains a 5-output model; model.json has the input shape and classes', async (t) => {
  const root = scratchDir(t);
  const data = join(root, 'data');
  await writeSynthDataset(data, {
    ...DEFAULT_SYNTH,
    train: 1500,
    test: 300,
    classes: 5,
    rows: 20,
    cols: 24,
    seed: 5,
  });
  const stages = (decode: Record<string, unknown>) => [
    { type: 'fetch', url: data },
    { type: 'untar' },
    { type: 'decodeIdx', ...decode },
    { type: 'normalise' },
    { type: 'shuffle' },
    { type: 'sgd', epochs: 2 },
    { type: 'evaluate', every: 0 },
  ];
  const run = async (name: string, decode: Record<string, unknown>) => {
    const config = await configFromObject({ name, stages: stages(decode) }, { stages: builtinStages });
    const events: RxtrainEvent[] = [];
    const runDir = join(root, name);
    const summary = await runExperiment({
      config,
      runDir,
      cacheDir: join(root, 'cache'),
      onEvent: (e) => events.push(e),
    });
    const model = JSON.parse(readFileSync(join(runDir, 'model.json'), 'utf8'));
    return { summary, events, model };
  };

  const auto = await run('auto', {});
  t.is(auto.model.classes, 5);
  t.is(auto.model.rows, 20 * 24 + 1);
  t.deepEqual(auto.model.input.shape, [20, 24]);
  t.false('classNames' in auto.model);
  t.true(auto.summary.test!.accuracy > 0.6, `accuracy ${auto.summary.test!.accuracy}`);
  t.false(auto.events.some((e) => e.type === 'warning' && e.code === 'W_CLASS_UNUSED'));
  const evaluation = auto.events.find((e) => e.type === 'eval');
  t.is(evaluation?.type === 'eval' ? evaluation.confusion?.length : 0, 25);

  // Seven names for five classes of data: two outputs no training example has.
  const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
  const seven = await run('seven', { classNames: names });
  t.is(seven.model.classes, 7);
  t.deepEqual(seven.model.classNames, names);
  const warning = seven.events.find((e) => e.type === 'warning' && e.code === 'W_CLASS_UNUSED');
  t.is(
    warning?.type === 'warning' ? warning.message : '',
    '2 of 7 classes have no train examples to train on: 5 (f), 6 (g); the model has an output for each but never learns them',
  );
  const named = seven.events.find((e) => e.type === 'eval');
  t.deepEqual(named?.type === 'eval' ? named.classNames : [], names);
});

test('decodeIdx.classes: auto with no train split is a config error at classesFrom', async (t) => {
  const error = await t.throwsAsync(
    configFromObject(
      {
        name: 'x',
        stages: [
          { type: 'fetch' },
          { type: 'decodeIdx', splits: { fit: { images: '**/a', labels: '**/b' } } },
        ],
      },
      { stages: builtinStages },
    ),
    { instanceOf: ConfigError },
  );
  t.regex(error?.message ?? '', /stages\[1\]\.classesFrom: classes: auto counts the labels of split "train"/);
});

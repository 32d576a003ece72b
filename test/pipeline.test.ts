/** The data stages against real bytes: hand-written IDX files, a real tar.gz, the real MNIST. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import test, { type ExecutionContext } from 'ava';
import { encodeIdx } from '../src/formats/idx.js';
import { configFromObject } from '../src/pipeline/config.js';
import type { Examples, Features, Message } from '../src/pipeline/messages.js';
import { builtinStages } from '../src/stages/index.js';
import { IdxError, RxtrainError } from '../src/util/errors.js';
import { collect, MNIST_DIR, makeTar, tempDir } from './helpers/index.js';
import { testPipeline } from './helpers/pipeline.js';

/** Run a chain of stages over `url` and collect what comes out. */
async function runStages(url: string, stages: Record<string, unknown>[], capacity = 8) {
  const config = await configFromObject(
    { name: 'pipeline-test', capacity: { items: capacity }, stages: [{ type: 'fetch', url }, ...stages] },
    { stages: builtinStages },
  );
  const { pipeline, events } = testPipeline(config);
  const items = await collect<Message>(pipeline.flow);
  return { items, events };
}

const examplesOf = (items: Message[], split: string) =>
  items.filter((m): m is Examples => m.kind === 'examples' && m.split === split);

/** The one `features` message among `items`, checked to be the only one, frozen with its transform. */
function featuresOf(t: ExecutionContext, items: Message[]) {
  const all = items.filter((m): m is Features => m.kind === 'features');
  t.is(all.length, 1, 'normalise sends its transform once');
  t.true(
    Object.isFrozen(all[0]) && Object.isFrozen(all[0]!.transform),
    'the message and its transform are frozen',
  );
  t.is('ready' in all[0]!.transform, false, 'a transform is final when sent: no ready flag');
  return { message: all[0]!, at: items.indexOf(all[0]!) };
}

/** A tiny dataset: 5 images of 2×3 pixels with values i*10+j, labels 0..4 mod 3. */
function tinyIdx() {
  const images = encodeIdx(
    'u8',
    [5, 2, 3],
    Array.from({ length: 30 }, (_, k) => Math.floor(k / 6) * 10 + (k % 6)),
  );
  const labels = encodeIdx('u8', [5], [0, 1, 2, 0, 1]);
  return { images, labels };
}

function writeSplit(dir: string, split: 'train' | 't10k', files: { images: Uint8Array; labels: Uint8Array }) {
  writeFileSync(join(dir, `${split}-images-idx3-ubyte`), files.images);
  writeFileSync(join(dir, `${split}-labels-idx1-ubyte`), files.labels);
}

test('hand-written IDX header bytes decode to the expected examples', async (t) => {
  const { images, labels } = tinyIdx();
  // The header, byte by byte: magic 00 00, dtype 08 (u8), rank 3, then 5, 2, 3 big-endian.
  t.deepEqual(Array.from(images.subarray(0, 16)), [0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 2, 0, 0, 0, 3]);
  t.deepEqual(Array.from(labels.subarray(0, 8)), [0, 0, 8, 1, 0, 0, 0, 5]);
  const dir = tempDir();
  writeSplit(dir, 'train', { images, labels });
  writeSplit(dir, 't10k', { images, labels });
  const { items } = await runStages(dir, [{ type: 'decodeIdx', classes: 3 }]);
  const train = examplesOf(items, 'train');
  const rows = train.flatMap((b) =>
    Array.from({ length: b.count }, (_, r) => Array.from(b.data.subarray(r * 6, r * 6 + 6))),
  );
  t.deepEqual(rows[0], [0, 1, 2, 3, 4, 5]);
  t.deepEqual(rows[4], [40, 41, 42, 43, 44, 45]);
  t.deepEqual(
    train.flatMap((b) => Array.from(b.labels)),
    [0, 1, 2, 0, 1],
  );
  t.deepEqual(train[0]!.shape, [2, 3]);
  const ends = items.filter((m) => m.kind === 'split-end');
  t.deepEqual(ends.map((m) => (m.kind === 'split-end' ? `${m.split}:${m.count}` : '')).sort(), [
    'test:5',
    'train:5',
  ]);
});

test('wider IDX dtypes decode big-endian', async (t) => {
  const dir = tempDir();
  writeSplit(dir, 'train', {
    images: encodeIdx('f32', [2, 2], [1.5, -2.25, 1e-3, 65504]),
    labels: encodeIdx('i32', [2], [1, 0]),
  });
  writeSplit(dir, 't10k', {
    images: encodeIdx('i16', [1, 2], [-300, 300]),
    labels: encodeIdx('i8', [1], [1]),
  });
  const { items } = await runStages(dir, [{ type: 'decodeIdx', classes: 2 }]);
  t.deepEqual(Array.from(examplesOf(items, 'train')[0]!.data), [1.5, -2.25, Math.fround(1e-3), 65504]);
  t.deepEqual(Array.from(examplesOf(items, 'test')[0]!.data), [-300, 300]);
  t.deepEqual(Array.from(examplesOf(items, 'train')[0]!.labels), [1, 0]);
});

const corruptions: [string, (b: Uint8Array) => Uint8Array, string, number][] = [
  ['a bad magic', (b) => Buffer.concat([Buffer.from([0x12]), b.subarray(1)]), 'E_IDX_MAGIC', 0],
  [
    'an unknown dtype',
    (b) => Buffer.concat([b.subarray(0, 2), Buffer.from([0x07]), b.subarray(3)]),
    'E_IDX_DTYPE',
    2,
  ],
  ['a truncated body', (b) => b.subarray(0, 16 + 20), 'E_IDX_TRUNCATED', 36],
  ['trailing bytes', (b) => Buffer.concat([b, Buffer.from([1, 2])]), 'E_IDX_TRAILING', 46],
];
for (const [name, corrupt, code, offset] of corruptions) {
  test(`an images file with ${name} is a typed error naming the file and byte offset`, async (t) => {
    const dir = tempDir();
    const { images, labels } = tinyIdx();
    writeSplit(dir, 'train', { images: corrupt(images), labels });
    writeSplit(dir, 't10k', tinyIdx());
    const error = await runStages(dir, [{ type: 'decodeIdx', classes: 3 }]).catch((e) => e);
    t.true(error instanceof IdxError, String(error));
    t.is(error.code, code);
    t.is(error.offset, offset);
    t.is(error.file, join(dir, 'train-images-idx3-ubyte'));
  });
}

test('images and labels that disagree in count, and labels out of range, are typed errors', async (t) => {
  const dir = tempDir();
  const { images } = tinyIdx();
  writeSplit(dir, 't10k', tinyIdx());
  writeSplit(dir, 'train', { images, labels: encodeIdx('u8', [4], [0, 1, 2, 0]) });
  const count = await runStages(dir, [{ type: 'decodeIdx', classes: 3 }]).catch((e) => e);
  t.is(count.code, 'E_IDX_COUNT');
  t.regex(
    count.message,
    /train-labels-idx1-ubyte: byte 4: train: 4 labels, but .*train-images-idx3-ubyte holds 5 images/,
  );
  t.is(count.offset, 4);
  writeSplit(dir, 'train', { images, labels: encodeIdx('u8', [5], [0, 1, 7, 0, 1]) });
  const range = await runStages(dir, [{ type: 'decodeIdx', classes: 3 }]).catch((e) => e);
  t.is(range.code, 'E_IDX_LABEL');
  t.is(range.offset, 8 + 2);
});

test('a missing labels file is reported with what was found', async (t) => {
  const dir = tempDir();
  writeSplit(dir, 't10k', tinyIdx());
  writeFileSync(join(dir, 'train-images-idx3-ubyte'), tinyIdx().images);
  const error = await runStages(dir, [{ type: 'decodeIdx', classes: 3 }]).catch((e) => e);
  t.true(error instanceof RxtrainError);
  t.regex(error.message, /split train has no labels file/);
});

test('untar expands a real tar.gz found by magic bytes, gunzips .gz entries, skips the rest', async (t) => {
  const { images, labels } = tinyIdx();
  const archive = await makeTar([
    { name: 'MNIST/', type: 'directory' },
    { name: 'MNIST/raw/train-labels-idx1-ubyte.gz', data: gzipSync(labels) },
    { name: 'MNIST/raw/train-labels-idx1-ubyte', data: labels },
    { name: 'MNIST/raw/t10k-labels-idx1-ubyte', data: labels },
    { name: 'MNIST/raw/t10k-images-idx3-ubyte.gz', data: gzipSync(images) },
    { name: 'MNIST/raw/train-images-idx3-ubyte', data: images },
    { name: 'MNIST/processed/notes.txt', data: 'skip me' },
  ]);
  const dir = tempDir();
  // Named .bin: detection is by content, not by name.
  writeFileSync(join(dir, 'dataset.bin'), archive);
  const { items, events } = await runStages(join(dir, 'dataset.bin'), [
    { type: 'untar', include: ['MNIST/raw/*'] },
  ]);
  const files = [
    ...new Set(items.filter((m) => m.kind === 'bytes').map((m) => (m.kind === 'bytes' ? m.file : ''))),
  ];
  t.deepEqual(files, [
    'MNIST/raw/train-labels-idx1-ubyte',
    'MNIST/raw/t10k-labels-idx1-ubyte',
    'MNIST/raw/t10k-images-idx3-ubyte',
    'MNIST/raw/train-images-idx3-ubyte',
  ]);
  const body = (file: string) =>
    Buffer.concat(
      items
        .filter((m) => m.kind === 'bytes' && m.file === file)
        .map((m) => (m.kind === 'bytes' ? m.bytes : Buffer.alloc(0))),
    );
  t.deepEqual(body('MNIST/raw/t10k-images-idx3-ubyte'), Buffer.from(images), 'gunzipped entry');
  t.true(
    events.some(
      (e) =>
        e.type === 'warning' && /skipping MNIST\/raw\/train-labels-idx1-ubyte, already read/.test(e.message),
    ),
  );

  // The same archive feeds the decoder end to end, with a tiny edge capacity.
  const decoded = await runStages(
    join(dir, 'dataset.bin'),
    [{ type: 'untar' }, { type: 'decodeIdx', classes: 3 }],
    1,
  );
  t.is(
    examplesOf(decoded.items, 'train').reduce((n, b) => n + b.count, 0),
    5,
  );
});

test('untar passes plain files through untouched', async (t) => {
  const dir = tempDir();
  const data = Buffer.from('just a plain file, not an archive — '.repeat(100));
  writeFileSync(join(dir, 'plain.txt'), data);
  const { items } = await runStages(join(dir, 'plain.txt'), [{ type: 'untar' }]);
  const chunks = items.filter((m) => m.kind === 'bytes');
  t.deepEqual(Buffer.concat(chunks.map((m) => (m.kind === 'bytes' ? m.bytes : Buffer.alloc(0)))), data);
  t.true(chunks.every((m) => m.kind === 'bytes' && m.file === 'plain.txt'));
});

test('a truncated tar.gz fails naming the archive and the entry', async (t) => {
  const { images, labels } = tinyIdx();
  const big = Buffer.alloc(200_000, 7);
  const archive = await makeTar([
    { name: 'a/labels', data: labels },
    { name: 'a/big.bin', data: big },
    { name: 'a/images', data: images },
  ]);
  const dir = tempDir();
  writeFileSync(join(dir, 'cut.tar.gz'), archive.subarray(0, Math.floor(archive.length * 0.6)));
  const error = await runStages(join(dir, 'cut.tar.gz'), [{ type: 'untar' }]).catch((e) => e);
  t.true(error instanceof RxtrainError, String(error));
  t.regex(error.message, /cut\.tar\.gz/);
});

test('the real MNIST: 60,000 training and 10,000 test examples with the official label counts', async (t) => {
  const { items } = await runStages(MNIST_DIR, [
    { type: 'untar' },
    { type: 'decodeIdx' },
    { type: 'normalise' },
  ]);
  const counts = (split: string) => {
    const histogram = new Array(10).fill(0);
    let n = 0;
    for (const b of examplesOf(items, split)) {
      n += b.count;
      for (const l of b.labels) histogram[l]++;
    }
    return { n, histogram };
  };
  const train = counts('train');
  const test_ = counts('test');
  t.is(train.n, 60000);
  t.is(test_.n, 10000);
  t.deepEqual(train.histogram, [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
  t.deepEqual(test_.histogram, [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
  const first = examplesOf(items, 'train')[0]!;
  t.deepEqual(first.shape, [28, 28]);
  t.true(first.data instanceof Uint8Array, 'pixels stay bytes');
  t.is(first.labels[0], 5, 'the first training digit is a 5');
  // A fixed scale is final at once: it comes ahead of the first batch.
  const features = featuresOf(t, items);
  t.true(features.at < items.indexOf(first));
  t.false(items.slice(0, features.at).some((m) => m.kind === 'examples'));
  const t0 = features.message.transform;
  t.is(t0.scale[0], Math.fround(1 / 255));
  t.is(t0.shift, null);
  t.true(t0.bias);
});

test('standardisation uses statistics of the training split only', async (t) => {
  const dir = tempDir();
  mkdirSync(dir, { recursive: true });
  // Train pixels are all 10 or 30 (mean 20, std 10); test pixels are 200 and must not count.
  writeSplit(dir, 'train', {
    images: encodeIdx('u8', [2, 1, 2], [10, 10, 30, 30]),
    labels: encodeIdx('u8', [2], [0, 1]),
  });
  writeSplit(dir, 't10k', {
    images: encodeIdx('u8', [1, 1, 2], [200, 200]),
    labels: encodeIdx('u8', [1], [0]),
  });
  const { items } = await runStages(dir, [
    { type: 'decodeIdx', classes: 2 },
    { type: 'normalise', scale: 1, standardise: 'global' },
  ]);
  // Statistics are final when the training split ends: the transform comes just before its end,
  // after every training batch, and the test batches that follow it pass on unchanged.
  const { message, at } = featuresOf(t, items);
  const trainEnd = items.findIndex((m) => m.kind === 'split-end' && m.split === 'train');
  t.is(at, trainEnd - 1);
  t.true(examplesOf(items, 'train').every((b) => items.indexOf(b) < at));
  t.throws(
    () => {
      (message.transform as { bias: boolean }).bias = false;
    },
    { instanceOf: TypeError },
  );
  const tr = message.transform;
  // feature = x·scale + shift = (x − 20)/10
  t.true(Math.abs(10 * tr.scale[0]! + tr.shift![0]! - -1) < 1e-6);
  t.true(Math.abs(30 * tr.scale[1]! + tr.shift![1]! - 1) < 1e-6);
  t.true(Math.abs(200 * tr.scale[0]! + tr.shift![0]! - 18) < 1e-5, 'test pixels use the train statistics');
});

/** The synthetic dataset generator: valid IDX, deterministic, bounded memory, learnable. */
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import test, { type ExecutionContext } from 'ava';
import { extract } from 'tar-stream';
import { parseIdxHeader } from '../src/formats/idx.js';
import { DEFAULT_SYNTH, type SynthSpec, synthFiles, writeSynthDataset } from '../src/formats/synth.js';
import { loadConfig } from '../src/pipeline/config.js';
import { runExperiment } from '../src/pipeline/run.js';
import { builtinStages } from '../src/stages/index.js';
import { RxtrainError } from '../src/util/errors.js';
import { ROOT, runCli, tempDir } from './helpers/index.js';

const small: SynthSpec = { ...DEFAULT_SYNTH, train: 3000, test: 500, seed: 7 };

const read = (dir: string, name: string) => readFileSync(join(dir, name));

/** A temporary directory removed when the test ends (these tests write tens of megabytes). */
function scratch(t: ExecutionContext): string {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Entry names and contents of a tar.gz, in archive order. */
async function untarGz(bytes: Buffer): Promise<{ name: string; data: Buffer }[]> {
  const entries: { name: string; data: Buffer }[] = [];
  const x = extract();
  const done = new Promise<void>((resolve, reject) => {
    x.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.on('end', () => {
        entries.push({ name: header.name, data: Buffer.concat(chunks) });
        next();
      });
    });
    x.on('finish', resolve);
    x.on('error', reject);
  });
  x.end(gunzipSync(bytes));
  await done;
  return entries;
}

test('writes MNIST-named IDX files with headers, sizes and labels that agree', async (t) => {
  const dir = join(scratch(t), 'synth');
  const result = await writeSynthDataset(dir, small);
  t.is(result.format, 'dir');
  t.deepEqual(readdirSync(dir).sort(), [
    't10k-images-idx3-ubyte',
    't10k-labels-idx1-ubyte',
    'train-images-idx3-ubyte',
    'train-labels-idx1-ubyte',
  ]);
  const images = read(dir, 'train-images-idx3-ubyte');
  const labels = read(dir, 'train-labels-idx1-ubyte');
  const ih = parseIdxHeader(images, 'images')!;
  const lh = parseIdxHeader(labels, 'labels')!;
  t.deepEqual(ih.dims, [3000, 28, 28]);
  t.is(ih.dtype, 'u8');
  t.is(images.byteLength, ih.fileBytes);
  t.deepEqual(lh.dims, [3000]);
  t.is(labels.byteLength, 8 + 3000);
  t.is(result.bytes, 16 + 3000 * 784 + 8 + 3000 + 16 + 500 * 784 + 8 + 500);
  // Every class occurs, roughly equally often; labels lie in [0, classes).
  const counts = new Array(10).fill(0);
  for (const l of labels.subarray(8)) counts[l]++;
  t.true(
    counts.every((c) => c > 200 && c < 400),
    `class counts ${counts}`,
  );
  // Like MNIST: mostly background zeros, and ink that reaches full intensity.
  const pixels = images.subarray(16);
  let zeros = 0;
  let max = 0;
  for (const p of pixels) {
    if (p === 0) zeros++;
    if (p > max) max = p;
  }
  t.true(zeros / pixels.length > 0.5 && zeros / pixels.length < 0.95, `${zeros / pixels.length} zeros`);
  t.is(max, 255);
  t.false(
    readdirSync(dir).some((f) => f.endsWith('.tmp')),
    'no temporary file left',
  );
});

test('the same seed writes the same bytes; another seed does not; a .tar.gz holds the same files in reading order', async (t) => {
  const a = join(scratch(t), 'a');
  const b = join(scratch(t), 'b');
  const c = join(scratch(t), 'c');
  await writeSynthDataset(a, small);
  await writeSynthDataset(b, small);
  await writeSynthDataset(c, { ...small, seed: 8 });
  for (const name of readdirSync(a)) t.true(read(a, name).equals(read(b, name)), name);
  t.false(read(a, 'train-images-idx3-ubyte').equals(read(c, 'train-images-idx3-ubyte')));
  t.false(read(a, 'train-labels-idx1-ubyte').equals(read(c, 'train-labels-idx1-ubyte')));

  const archive = join(scratch(t), 'data.tar.gz');
  const result = await writeSynthDataset(archive, small);
  t.is(result.format, 'tar.gz');
  const entries = await untarGz(readFileSync(archive));
  // The test split first (the evaluator holds it before training), labels before their images.
  t.deepEqual(
    entries.map((e) => e.name),
    [
      'data/t10k-labels-idx1-ubyte',
      'data/t10k-images-idx3-ubyte',
      'data/train-labels-idx1-ubyte',
      'data/train-images-idx3-ubyte',
    ],
  );
  for (const e of entries) t.true(e.data.equals(read(a, e.name.slice(5))), e.name);
  const again = join(scratch(t), 'data.tar.gz');
  await writeSynthDataset(again, small);
  t.true(readFileSync(archive).equals(readFileSync(again)), 'archives are reproducible byte for byte');
});

test('streams in bounded memory: 314 MB of images with less than 96 MB of buffers alive at any time', async (t) => {
  // ArrayBuffers count until collected, and V8 collects on about 64 MB of external growth: the
  // bound allows for that lag; a writer that ignored backpressure would hold nearly everything.
  const spec = { ...small, train: 400_000, test: 0 };
  const dir = join(scratch(t), 'big');
  let peak = 0;
  const before = process.memoryUsage().arrayBuffers;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().arrayBuffers - before);
  }, 2);
  let calls = 0;
  await writeSynthDataset(dir, spec, () => {
    if (++calls % 8 === 0) peak = Math.max(peak, process.memoryUsage().arrayBuffers - before);
  });
  clearInterval(sampler);
  t.is(statSync(join(dir, 'train-images-idx3-ubyte')).size, 16 + 400_000 * 784);
  t.log(`peak ${(peak / 1048576).toFixed(1)} MB`);
  t.true(peak < 96 * 1024 * 1024, `peak ${(peak / 1048576).toFixed(1)} MB of ArrayBuffers`);
  t.deepEqual(
    synthFiles(spec).map((f) => f.name),
    ['train-labels-idx1-ubyte', 'train-images-idx3-ubyte'],
  );
});

test('a small synthetic set trains well above chance through the default pipeline, from a directory and a .tar.gz', async (t) => {
  const dir = join(scratch(t), 'train-dir');
  const archive = join(scratch(t), 'train.tar.gz');
  const spec = { ...DEFAULT_SYNTH, train: 6000, test: 1000, seed: 3 };
  await writeSynthDataset(dir, spec);
  await writeSynthDataset(archive, spec);
  for (const url of [dir, archive]) {
    const config = await loadConfig(join(ROOT, 'config/mnist-logreg.yaml'), {
      stages: builtinStages,
      overrides: [`fetch.url=${url}`, 'sgd.epochs=2', 'evaluate.every=0'],
    });
    const summary = await runExperiment({ config, runDir: join(scratch(t), 'run'), cacheDir: scratch(t) });
    t.is(summary.status, 'completed');
    t.is(summary.samples, 12_000);
    // Chance is 0.10; the evaluation before training is near it, the one after far above.
    t.true(summary.test!.accuracy > 0.8, `${url}: test accuracy ${summary.test!.accuracy}`);
  }
});

test('rxtrain synth: writes a dataset and says what it wrote; bad options are one line, exit 2, nothing written', async (t) => {
  const out = join(scratch(t), 'cli');
  const ok = await runCli(['synth', out, '--train', '2_000', '--test', '100', '--size', '12x10', '--quiet']);
  t.is(ok.code, 0, ok.stderr);
  t.regex(
    ok.stdout,
    /^wrote .*cli \(dir\): 2,000 train and 100 test examples of 12×10, 10 classes, 254,148 bytes/,
  );
  t.deepEqual(parseIdxHeader(read(out, 'train-images-idx3-ubyte'), 'x')!.dims, [2000, 12, 10]);
  t.is(ok.stderr, '');

  const bad = join(scratch(t), 'bad');
  const result = await runCli(['synth', bad, '--train', 'lots', '--classes', '1', '--size', '28']);
  t.is(result.code, 2);
  t.is(result.stderr.trim().split('\n').length, 1, result.stderr);
  t.regex(result.stderr, /--train expects an integer, got "lots"/);
  t.regex(result.stderr, /--size expects ROWSxCOLS/);
  t.false(existsSync(bad));

  const range = await runCli(['synth', bad, '--classes', '1']);
  t.is(range.code, 2);
  t.regex(range.stderr, /E_USAGE: synth: classes must be an integer in \[2, 256\], got 1/);
  t.false(existsSync(bad));
});

test('an output that cannot be created is an E_IO error naming it', async (t) => {
  const file = join(scratch(t), 'not-a-dir');
  writeFileSync(file, 'x');
  const error = await t.throwsAsync(writeSynthDataset(join(file, 'synth'), small));
  t.true(error instanceof RxtrainError);
  t.is((error as RxtrainError).code, 'E_IO');
  t.regex(error!.message, /not-a-dir/);
});

test('other layouts: EMNIST names, transposed and gzipped IDX; CIFAR-10 records in cifar-10-batches-bin/', async (t) => {
  const plain = join(scratch(t), 'plain');
  const emnist = join(scratch(t), 'emnist');
  await writeSynthDataset(plain, { ...small, train: 200, test: 50, rows: 6, cols: 9 });
  const result = await runCli(
    [
      'synth',
      emnist,
      '--train',
      '200',
      '--test',
      '50',
      '--seed',
      '7',
      '--size',
      '6x9',
      '--prefix',
      'emnist-letters',
      '--transpose',
      '--gzip',
    ],
    {},
  );
  t.is(result.code, 0, result.stderr);
  t.deepEqual(readdirSync(emnist).sort(), [
    'emnist-letters-test-images-idx3-ubyte.gz',
    'emnist-letters-test-labels-idx1-ubyte.gz',
    'emnist-letters-train-images-idx3-ubyte.gz',
    'emnist-letters-train-labels-idx1-ubyte.gz',
  ]);
  // The same examples, each stored column by column, the header saying [n, cols, rows].
  const stored = gunzipSync(read(emnist, 'emnist-letters-train-images-idx3-ubyte.gz'));
  const upright = read(plain, 'train-images-idx3-ubyte');
  t.deepEqual(parseIdxHeader(stored, 's')!.dims, [200, 9, 6]);
  for (const [i, y, x] of [
    [0, 0, 0],
    [3, 2, 7],
    [199, 5, 8],
  ] as const) {
    t.is(stored[16 + i * 54 + x * 6 + y], upright[16 + i * 54 + y * 9 + x]);
  }
  t.true(
    gunzipSync(read(emnist, 'emnist-letters-train-labels-idx1-ubyte.gz')).equals(
      read(plain, 'train-labels-idx1-ubyte'),
    ),
  );

  const cifar = join(scratch(t), 'cifar-10-binary.tar.gz');
  const written = await runCli(
    [
      'synth',
      cifar,
      '--layout',
      'cifar',
      '--train',
      '250',
      '--per-file',
      '100',
      '--test',
      '40',
      '--size',
      '8x8',
      '--quiet',
    ],
    {},
  );
  t.is(written.code, 0, written.stderr);
  t.regex(written.stdout, /250 train and 40 test examples of 3×8×8, 10 classes/);
  const entries = await untarGz(readFileSync(cifar));
  t.deepEqual(
    entries.map((e) => [e.name, e.data.length]),
    [
      ['cifar-10-batches-bin/data_batch_1.bin', 100 * 193],
      ['cifar-10-batches-bin/data_batch_2.bin', 100 * 193],
      ['cifar-10-batches-bin/data_batch_3.bin', 50 * 193],
      ['cifar-10-batches-bin/test_batch.bin', 40 * 193],
      ['cifar-10-batches-bin/batches.meta.txt', 71],
    ],
  );
  const labels = entries
    .slice(0, 3)
    .flatMap((e) => Array.from({ length: e.data.length / 193 }, (_, i) => e.data[i * 193]!));
  t.true(labels.every((l) => l < 10));
  t.true(new Set(labels).size === 10, 'every class occurs');

  const bad = await runCli(['synth', join(scratch(t), 'x.tar.gz'), '--gzip'], {});
  t.is(bad.code, 2);
  t.regex(bad.stderr, /--gzip writes a directory of \.gz files/);
});

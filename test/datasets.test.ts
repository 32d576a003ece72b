/**
 * The four dataset configs, end to end through the real CLI, against a local HTTP server serving
 * files with the real names, layout and formats — generated here by `synth`: Fashion-MNIST's and
 * KMNIST's four gzipped IDX files, EMNIST's gzip.zip (gzipped, transposed IDX files under gzip/,
 * beside another split's), CIFAR-10's cifar-10-binary.tar.gz (records under
 * cifar-10-batches-bin/). Only the URL and the checksums are overridden, as the real hosts cannot
 * be reached from here; every other setting is the config's own.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { DEFAULT_SYNTH, type SynthSpec, writeSynthDataset } from '../src/formats/synth.js';
import { encodeZip } from '../src/formats/zip.js';
import type { RunSummary } from '../src/pipeline/run.js';
import { FaultServer, serve } from './helpers/faultServer.js';
import { runCli, tempDir } from './helpers/index.js';
import { scratchDir } from './helpers/remoteRun.js';

const md5 = (bytes: Uint8Array) => createHash('md5').update(bytes).digest('hex');

/** The files `synth` writes for this spec, by name. */
async function synthFilesOf(spec: Partial<SynthSpec>): Promise<Record<string, Buffer>> {
  const dir = join(tempDir(), 'synth');
  await writeSynthDataset(dir, { ...DEFAULT_SYNTH, ...spec });
  return Object.fromEntries(readdirSync(dir).map((name) => [name, readFileSync(join(dir, name))]));
}

let server: FaultServer;
/** Per config: the URL to fetch and the checksum settings of the served files. */
const sources: Record<string, { url: string; md5: string }> = {};

test.before(async () => {
  const routes: Record<string, ReturnType<typeof serve>[]> = {};
  const idx = { train: 2000, test: 400, gzip: true };
  const fashion = await synthFilesOf({ ...idx, seed: 1 });
  const kmnist = await synthFilesOf({ ...idx, seed: 2 });
  for (const [name, data] of Object.entries(fashion)) routes[`/fashion/${name}`] = [serve(data)];
  for (const [name, data] of Object.entries(kmnist)) routes[`/kmnist/dataset/kmnist/${name}`] = [serve(data)];
  const md5Map = (files: Record<string, Buffer>) =>
    `{${Object.entries(files)
      .map(([n, d]) => `${n}: "${md5(d)}"`)
      .join(', ')}}`;

  // EMNIST: every split in one zip; the config keeps the balanced one.
  const balanced = await synthFilesOf({
    train: 4700,
    test: 940,
    classes: 47,
    seed: 3,
    prefix: 'emnist-balanced',
    transpose: true,
    gzip: true,
  });
  const digits = await synthFilesOf({ train: 50, test: 10, seed: 4, prefix: 'emnist-digits', gzip: true });
  const zip = encodeZip([
    { name: 'gzip/', data: new Uint8Array(0), deflate: false },
    ...Object.entries({ ...digits, ...balanced }).map(([name, data]) => ({ name: `gzip/${name}`, data })),
  ]);
  routes['/cs_links/EMNIST/gzip.zip'] = [serve(zip)];

  const cifarDir = join(tempDir(), 'cifar-10-binary.tar.gz');
  await writeSynthDataset(cifarDir, {
    ...DEFAULT_SYNTH,
    layout: 'cifar',
    channels: 3,
    rows: 32,
    cols: 32,
    train: 2500,
    perFile: 500,
    test: 500,
    seed: 5,
  });
  const cifar = readFileSync(cifarDir);
  routes['/~kriz/cifar-10-binary.tar.gz'] = [serve(cifar)];

  server = await FaultServer.start(routes);
  sources['fashion-mnist'] = { url: server.url('/fashion/'), md5: md5Map(fashion) };
  sources['kmnist'] = { url: server.url('/kmnist/dataset/kmnist/'), md5: md5Map(kmnist) };
  sources['emnist-balanced'] = { url: server.url('/cs_links/EMNIST/gzip.zip'), md5: md5(zip) };
  sources['cifar10-logreg'] = { url: server.url('/~kriz/cifar-10-binary.tar.gz'), md5: md5(cifar) };
});

test.after.always(async () => {
  await server?.close();
});

async function runConfig(t: ExecutionContext, config: string, sets: string[] = []) {
  const runDir = join(scratchDir(t), 'run');
  const { url, md5: sums } = sources[config]!;
  const result = await runCli([
    'run',
    `config/${config}.yaml`,
    '--quiet',
    '--cache',
    scratchDir(t),
    '--run-dir',
    runDir,
    '--set',
    `fetch.url=${url}`,
    '--set',
    `fetch.md5=${sums}`,
    '--set',
    'sgd.epochs=2',
    '--set',
    'evaluate.every=0',
    ...sets.flatMap((s) => ['--set', s]),
  ]);
  return { result, runDir };
}

const configs: { config: string; classes: number; shape: number[]; minAccuracy: number }[] = [
  { config: 'fashion-mnist', classes: 10, shape: [28, 28], minAccuracy: 0.8 },
  { config: 'kmnist', classes: 10, shape: [28, 28], minAccuracy: 0.8 },
  { config: 'emnist-balanced', classes: 47, shape: [28, 28], minAccuracy: 0.5 },
  { config: 'cifar10-logreg', classes: 10, shape: [3, 32, 32], minAccuracy: 0.8 },
];

for (const c of configs) {
  test(`config/${c.config}.yaml runs end to end from the local server`, async (t) => {
    const { result, runDir } = await runConfig(t, c.config);
    t.is(result.code, 0, result.stderr);
    const summary = JSON.parse(readFileSync(join(runDir, 'summary.json'), 'utf8')) as RunSummary;
    t.is(summary.status, 'completed');
    t.true(summary.test!.accuracy >= c.minAccuracy, `test accuracy ${summary.test!.accuracy}`);
    t.log(`${c.config}: test accuracy ${summary.test!.accuracy.toFixed(4)} after ${summary.steps} steps`);
    const model = JSON.parse(readFileSync(join(runDir, 'model.json'), 'utf8'));
    t.is(model.classes, c.classes);
    t.is(model.classNames.length, c.classes);
    t.deepEqual(model.input.shape, c.shape);
    t.is(model.rows, c.shape.reduce((a, b) => a * b, 1) + 1);
  });
}

test('a wrong checksum from the server fails the run with one line naming the URL', async (t) => {
  const { url } = sources['fashion-mnist']!;
  const bad = 'f'.repeat(32);
  const wrong = `{train-images-idx3-ubyte.gz: ${bad}, train-labels-idx1-ubyte.gz: ${bad}, t10k-images-idx3-ubyte.gz: ${bad}, t10k-labels-idx1-ubyte.gz: ${bad}}`;
  const { result } = await runConfig(t, 'fashion-mnist', [`fetch.md5=${wrong}`, 'fetch.retries=0']);
  t.is(result.code, 1, result.stderr);
  const lines = result.stderr.trimEnd().split('\n');
  t.is(lines.length, 1, result.stderr);
  t.regex(
    lines[0]!,
    /^rxtrain: E_FETCH_CHECKSUM: http:\/\/127\.0\.0\.1:\d+\/fashion\/\S+-ubyte\.gz: md5 mismatch/,
  );
  t.true(lines[0]!.startsWith(`rxtrain: E_FETCH_CHECKSUM: ${url}`));
});

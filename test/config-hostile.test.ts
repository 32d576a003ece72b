/**
 * Configs that pass validation and then run away, or `--set`s that land somewhere else than meant:
 * each is a config error (exit 2) with its key, line or `--set`, before anything runs.
 */
import { join } from 'node:path';
import test from 'ava';
import { loadConfig } from '../src/pipeline/config.js';
import { builtinStages } from '../src/stages/index.js';
import { ConfigError } from '../src/util/errors.js';
import { billionLaughs, ROOT, runCli, tempDir } from './helpers/index.js';

const DEFAULT = join(ROOT, 'config/mnist-logreg.yaml');
const DATA = 'stages:\n  - type: fetch\n  - type: untar\n  - type: decodeIdx\n  - type: normalise\n';

async function problems(text: string | undefined, overrides: string[] = []) {
  const error = await loadConfig(text === undefined ? DEFAULT : 'x.yaml', {
    stages: builtinStages,
    overrides,
    ...(text === undefined ? {} : { text }),
  }).catch((e) => e);
  if (!(error instanceof ConfigError)) throw new Error(`expected a ConfigError, got ${error}`);
  return error.issues.map((i) => `${i.origin ?? `${i.line}:${i.column}`} ${i.path}: ${i.message}`);
}

test('a --set into a map the file leaves to its default changes that key and keeps the others', async (t) => {
  const config = await loadConfig(DEFAULT, {
    stages: builtinStages,
    overrides: ['decodeIdx.splits.train.images=**/train-images.idx'],
  });
  const splits = (config.stages.find((s) => s.id === 'decodeIdx')!.settings as { splits: unknown })
    .splits as Record<string, { images: string; labels: string }>;
  t.deepEqual(Object.keys(splits), ['train', 'test'], 'the test split stays');
  t.is(splits['train']!.images, '**/train-images.idx');
  t.is(splits['train']!.labels, '**/train-labels-idx1-ubyte', 'the sibling key stays');
});

test('an error inside a map given by --set is reported against that --set', async (t) => {
  t.deepEqual(await problems(undefined, ['sgd.init={type: normal, std: abc}']), [
    '--set sgd.init={type: normal, std: abc} stages[5].init.std: expected number, got "abc"',
  ]);
});

test('__proto__, constructor and prototype are never setting names', async (t) => {
  const lines = await problems(undefined, ['sgd.__proto__.lr=abc', 'sgd.constructor=1']);
  t.deepEqual(lines, [
    '--set sgd.__proto__.lr=abc sgd.__proto__.lr: "__proto__" is not a setting name',
    '--set sgd.constructor=1 sgd.constructor: "constructor" is not a setting name',
  ]);
  const inFile = await problems(`${DATA}  - type: shuffle\n  - type: sgd\n    __proto__: { lr: 5 }\n`);
  t.deepEqual(inFile, ['8:5 : "__proto__" is not a setting name']);
});

test('sizes that would exhaust memory are config errors with the bound', async (t) => {
  const lines = await problems(undefined, ['capacity={items: 1000000000}', 'shuffle.bufferSize=1e12']);
  t.is(lines.length, 2);
  t.regex(lines[0]!, /^--set capacity=\{items: 1000000000\} capacity\.items: .*4096/);
  t.regex(lines[1]!, /^--set shuffle\.bufferSize=1e12 stages\[4\]\.bufferSize: .*1000000/);
});

test('checkpoint.keepBest must name a split an evaluator scores', async (t) => {
  const lines = await problems(undefined, ['checkpoint.every=100', 'checkpoint.keepBest=tset.accuracy']);
  t.deepEqual(lines, [
    '--set checkpoint.keepBest=tset.accuracy checkpoint.keepBest: no stage evaluates a "tset" split (did you mean "test"?); evaluated: test',
  ]);
});

test('a billion-laughs YAML and an oversized file are config errors, exit 2, not internal errors', async (t) => {
  const laughs = `${billionLaughs()}stages: *a8\n`;
  const dir = tempDir();
  const { writeFileSync } = await import('node:fs');
  writeFileSync(join(dir, 'laughs.yaml'), laughs);
  writeFileSync(join(dir, 'huge.yaml'), `# ${'x'.repeat(2 * 1024 * 1024)}\n${DATA}`);
  for (const [file, message] of [
    ['laughs.yaml', /alias/i],
    ['huge.yaml', /a config is at most 1048576 \(1 MiB\)/],
  ] as const) {
    const r = await runCli(['validate', join(dir, file)]);
    t.is(r.code, 2, file);
    t.regex(r.stderr, message, file);
    t.notRegex(r.stderr, /internal error/);
  }
});

test('a class count whose confusion matrix would not fit is a config error', async (t) => {
  const lines = await problems(undefined, ['decodeIdx.classes=20000']);
  t.is(lines.length, 1);
  t.regex(lines[0]!, /^--set decodeIdx\.classes=20000 stages\[2\]\.classes: .*4096/);
});

test('an MLP whose hidden layers cannot fit this machine’s memory budget is a config error', async (t) => {
  const saved = process.env.RXTRAIN_MEMORY_BUDGET;
  process.env.RXTRAIN_MEMORY_BUDGET = '1G';
  t.teardown(() => {
    if (saved === undefined) delete process.env.RXTRAIN_MEMORY_BUDGET;
    else process.env.RXTRAIN_MEMORY_BUDGET = saved;
  });
  const mlp = join(ROOT, 'config/mnist-mlp.yaml');
  const error = await loadConfig(mlp, {
    stages: builtinStages,
    overrides: ['sgd.model.hidden=[8192, 8192, 8192]'],
  }).catch((e) => e);
  t.true(error instanceof ConfigError, String(error));
  const [issue] = (error as ConfigError).issues;
  t.regex(
    `${issue!.origin} ${issue!.path}: ${issue!.message}`,
    /^--set sgd\.model\.hidden=\[8192, 8192, 8192\] stages\[\d\]\.model\.hidden: this MLP needs 1\.\d GB; a run may plan 1\.0 GB \(RXTRAIN_MEMORY_BUDGET\)/,
  );
  // The same layers fit a budget of 2 GB.
  process.env.RXTRAIN_MEMORY_BUDGET = '2G';
  await t.notThrowsAsync(
    loadConfig(mlp, { stages: builtinStages, overrides: ['sgd.model.hidden=[8192, 8192, 8192]'] }),
  );
});

test('a shuffle window larger than the budget fails before it is allocated, naming the setting; one larger than the data costs nothing', async (t) => {
  const args = (dir: string, size: string) => [
    'run',
    DEFAULT,
    '--quiet',
    '--run-dir',
    join(dir, 'run'),
    '--cache',
    join(dir, 'cache'),
    '--set',
    'shuffle.mode=buffer',
    '--set',
    `shuffle.bufferSize=${size}`,
    '--set',
    'sgd.steps=20',
    '--set',
    'evaluate.every=0',
  ];
  const small = await runCli(args(tempDir(), '60000'), { env: { RXTRAIN_MEMORY_BUDGET: '16M' } });
  t.is(small.code, 1, small.stderr);
  t.regex(
    small.stderr,
    /rxtrain: E_MEMORY: shuffle\.bufferSize: a shuffle window of 60,000 examples of 784 values needs \d+ MB; a run may plan 16 MB \(RXTRAIN_MEMORY_BUDGET\); lower shuffle\.bufferSize/,
  );
  // A million-example window over MNIST's 60,000 holds 60,000: well within a 100 MB budget.
  const big = await runCli(args(tempDir(), '1000000'), { env: { RXTRAIN_MEMORY_BUDGET: '100M' } });
  t.is(big.code, 0, big.stderr);
});

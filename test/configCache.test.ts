/**
 * The cache of validated configs (pipeline/configCache.ts): a hit gives what a full load gives;
 * anything that could change the result is another key; nothing invalid, unkeyable or damaged is
 * ever used.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { type ExperimentConfig, loadConfig, resolvedYaml } from '../src/pipeline/config.js';
import { jsonExact, loadConfigCached, roundTripProblems } from '../src/pipeline/configCache.js';
import { builtinStages } from '../src/stages/index.js';
import { ConfigError } from '../src/util/errors.js';
import { tempDir } from './helpers/index.js';

const DEFAULT = readFileSync('config/mnist-logreg.yaml', 'utf8');

function setup(text = DEFAULT) {
  const dir = tempDir();
  const file = join(dir, 'experiment.yaml');
  writeFileSync(file, text);
  const cacheDir = join(dir, 'cache');
  const entries = () => {
    try {
      return readdirSync(join(cacheDir, 'configs')).filter((n) => n.endsWith('.json'));
    } catch {
      return [];
    }
  };
  const load = (overrides: string[] = [], build = 'build-1') =>
    loadConfigCached(file, { stages: builtinStages, overrides, cacheDir, build });
  return { dir, file, cacheDir, entries, load };
}

/** What a run uses of a config: everything but the definitions' identity, and its resolved YAML. */
const seen = (c: ExperimentConfig) => ({
  ...c,
  stages: c.stages.map(({ definition, ...s }) => ({ ...s, type: definition.type })),
  yaml: resolvedYaml(c),
});

test('a second load of the same config comes from the cache and gives what a full load gives', async (t) => {
  const { file, entries, load } = setup();
  const first = await load(['sgd.epochs=2']);
  t.is(entries().length, 1);
  const second = await load(['sgd.epochs=2']);
  t.not(second, first);
  const full = await loadConfig(file, { stages: builtinStages, overrides: ['sgd.epochs=2'] });
  t.deepEqual(seen(second), seen(full));
  t.is(second.stages[5]!.definition, full.stages[5]!.definition, 'the built-in definitions');
  t.deepEqual(roundTripProblems(second), []);
  t.is(entries().length, 1, 'read, not written again');
});

test('the text, the overrides and the build are all part of the key', async (t) => {
  const { file, entries, load } = setup();
  await load();
  await load(['seed=3']);
  t.is((await load(['seed=3'])).seed, 3);
  await load([], 'build-2');
  t.is(entries().length, 3);
  writeFileSync(file, DEFAULT.replace('epochs: 5', 'epochs: 4'));
  const edited = await load();
  t.is(entries().length, 4);
  t.is((edited.stages[5]!.settings as { epochs: number }).epochs, 4);
});

test('an invalid config is reported as a full load reports it, and nothing is kept', async (t) => {
  const { file, entries, load } = setup(DEFAULT.replace('batchSize: 64', 'batchSize: -1'));
  const cached = await t.throwsAsync(load(), { instanceOf: ConfigError });
  const full = await t.throwsAsync(loadConfig(file, { stages: builtinStages }), { instanceOf: ConfigError });
  t.is(cached.message, full.message);
  t.regex(cached.message, /:\d+:\d+ /, 'with its line and column');
  t.deepEqual(entries(), []);
});

test('a config naming stage modules is never cached', async (t) => {
  const module = join(process.cwd(), 'examples/running-count-stage.js');
  const { entries, load } = setup(`modules: [${JSON.stringify(module)}]\n${DEFAULT}`);
  const first = await load();
  t.is(first.modules.length, 1);
  await load();
  t.deepEqual(entries(), []);
});

test('a damaged, foreign or stale entry is not used, and a full load writes it again', async (t) => {
  const { cacheDir, entries, load } = setup();
  const good = seen(await load());
  const [name] = entries();
  const path = join(cacheDir, 'configs', name!);
  const valid = readFileSync(path, 'utf8');
  for (const bad of [
    '{"format":"rxtrain-config-cache/1","key":',
    valid.replace('"key":"', '"key":"0'),
    valid.replace('"format":"rxtrain-config-cache/1"', '"format":"rxtrain-config-cache/0"'),
    valid.replace('"type":"sgd"', '"type":"no-such-stage"'),
  ]) {
    writeFileSync(path, bad);
    t.deepEqual(seen(await load()), good);
    t.is(readFileSync(path, 'utf8'), valid, 'rewritten by the full load');
  }
});

test('jsonExact: only what JSON gives back exactly', (t) => {
  t.true(jsonExact({ a: [1, 'x', null, true, { b: 2.5 }] }));
  for (const v of [
    undefined,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    -0,
    new Float32Array(1),
    new Date(0),
    new Array(3),
  ])
    t.false(jsonExact({ v }), String(v));
  t.false(jsonExact({ a: undefined }), 'a key whose value is undefined');
});

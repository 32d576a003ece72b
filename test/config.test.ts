import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { parse } from 'yaml';
import { configFromObject, loadConfig, resolvedYaml } from '../src/pipeline/config.js';
import { builtinStages } from '../src/stages/index.js';
import { ConfigError } from '../src/util/errors.js';
import { ROOT, runCli, tempDir } from './helpers/index.js';

const THREE_MISTAKES = `name: broken
stages:
  - type: fetch
    url: embedded:mnist
  - type: untarr
  - type: decodeIdx
  - type: normalise
  - type: shuffle
  - type: sgd
    batchSize: 64
    lr: "fast"
    epohcs: 5
  - type: evaluate
`;

function write(text: string, name = 'experiment.yaml'): string {
  const file = join(tempDir(), name);
  writeFileSync(file, text);
  return file;
}

async function issuesOf(text: string, overrides: string[] = []) {
  const error = await loadConfig('x.yaml', { stages: builtinStages, text, overrides }).catch((e) => e);
  if (!(error instanceof ConfigError)) throw new Error(`expected a ConfigError, got ${error}`);
  return error.issues;
}

test('three mistakes are reported together, each with line:column and key path', async (t) => {
  const issues = await issuesOf(THREE_MISTAKES);
  t.deepEqual(
    issues.map((i) => [i.line, i.column, i.path]),
    [
      [5, 11, 'stages[1].type'],
      [11, 9, 'stages[5].lr'],
      [12, 5, 'stages[5].epohcs'],
    ],
  );
  t.regex(issues[0]!.message, /unknown stage type "untarr" \(did you mean "untar"\?\)/);
  t.regex(issues[1]!.message, /expected number, got "fast"/);
  t.regex(issues[2]!.message, /unknown key "epohcs" \(did you mean "epochs"\?\)/);
});

test('rxtrain validate prints every problem as file:line:column and exits 2', async (t) => {
  const file = write(THREE_MISTAKES);
  const result = await runCli(['validate', file]);
  t.is(result.code, 2);
  const lines = result.stderr.trim().split('\n');
  t.is(lines[0], `rxtrain: 3 problems in ${file}:`);
  t.true(lines[1]!.startsWith(`${file}:5:11 stages[1].type: unknown stage type`));
  t.true(lines[2]!.startsWith(`${file}:11:9 stages[5].lr: expected number`));
  t.true(lines[3]!.startsWith(`${file}:12:5 stages[5].epohcs: unknown key`));
  t.false(result.stderr.includes('    at '), 'no stack trace');
});

test('a valid config validates and exits 0', async (t) => {
  const result = await runCli(['validate', 'config/mnist-logreg.yaml']);
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /ok \(fetch -> untar -> decodeIdx -> normalise -> shuffle -> sgd -> evaluate\)/);
});

test('YAML syntax errors carry line and column', async (t) => {
  const issues = await issuesOf('stages:\n  - type: fetch\n    url: [unclosed\n');
  t.is(issues.length, 1);
  t.is(issues[0]!.line, 4);
  t.regex(issues[0]!.message, /Flow sequence/);
});

test('duplicate keys, nested schema errors and refinements are located', async (t) => {
  t.is((await issuesOf('stages:\n  - type: sgd\n    lr: 1\n    lr: 2\n'))[0]!.line, 4);
  const issues = await issuesOf(
    'stages:\n  - type: sgd\n    init: {type: uniform}\n    batchSize: 0\n  - type: shuffle\n    holdout: {size: 3, fraction: 0.1}\n',
  );
  t.deepEqual(
    issues.map((i) => [i.line, i.path]),
    [
      [3, 'stages[0].init.type'],
      [4, 'stages[0].batchSize'],
      [6, 'stages[1].holdout'],
    ],
  );
});

test('top-level and stage problems are reported in one pass', async (t) => {
  const issues = await issuesOf('seeed: 1\nstages:\n  - type: sgd\n    lr: -1\n  - type: sgd\n');
  t.deepEqual(
    issues.map((i) => i.path),
    ['seeed', 'stages[0].lr', 'stages[1].id'],
  );
  t.regex(issues[0]!.message, /did you mean "seed"/);
  t.regex(issues[2]!.message, /duplicate stage id "sgd"/);
});

test('--set overrides stage settings and top-level keys, parsed as YAML', async (t) => {
  const config = await loadConfig(join(ROOT, 'config/mnist-logreg.yaml'), {
    stages: builtinStages,
    overrides: ['sgd.lr=0.5', 'sgd.init={type: zeros}', 'seed=7', 'fetch.url=http://127.0.0.1:9/x.tar.gz'],
  });
  const sgd = config.stages.find((s) => s.id === 'sgd')!.settings as { lr: number; init: { type: string } };
  t.is(sgd.lr, 0.5);
  t.is(sgd.init.type, 'zeros');
  t.is(config.seed, 7);
  // The resolved config holds every default and loads to the same thing.
  const resolved = parse(resolvedYaml(config));
  t.is(resolved.stages[5].batchSize, 64);
  t.is(resolved.stages[0].url, 'http://127.0.0.1:9/x.tar.gz');
  const again = await loadConfig('again.yaml', { stages: builtinStages, text: resolvedYaml(config) });
  t.is(resolvedYaml(again), resolvedYaml(config));
});

test('bad --set values are reported against the override, not the file', async (t) => {
  const issues = await issuesOf('stages:\n  - type: sgd\n', ['sgd.lr=abc', 'nosuch.x=1', 'broken']);
  t.deepEqual(
    issues.map((i) => i.origin),
    ['--set sgd.lr=abc', '--set nosuch.x=1', '--set broken'],
  );
});

test('an experiment can be given as an object', async (t) => {
  const config = await configFromObject(
    {
      name: 'inline',
      stages: [
        { type: 'fetch' },
        { type: 'decodeIdx' },
        { type: 'normalise' },
        { type: 'shuffle' },
        { type: 'sgd', id: 'trainer', lr: 0.3 },
      ],
    },
    { stages: builtinStages },
  );
  t.is(config.name, 'inline');
  t.deepEqual(
    config.stages.map((s) => s.id),
    ['fetch', 'decodeIdx', 'normalise', 'shuffle', 'trainer'],
  );
  const error = await configFromObject(
    { stages: [{ type: 'sgd', lr: 'x' }] },
    { stages: builtinStages },
  ).catch((e) => e);
  t.true(error instanceof ConfigError);
});

test('config/mnist-remote.yaml is the default experiment with another source', async (t) => {
  const load = (f: string) => loadConfig(join(ROOT, f), { stages: builtinStages });
  const [local, remote] = [await load('config/mnist-logreg.yaml'), await load('config/mnist-remote.yaml')];
  const training = (c: typeof local) =>
    c.stages
      .filter((s) => !['fetch', 'untar'].includes(s.type))
      .map((s) => ({ type: s.type, settings: s.settings }));
  t.deepEqual(training(remote), training(local));
  t.is(remote.seed, local.seed);
});

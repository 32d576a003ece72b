import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { parse } from 'yaml';
import { z } from 'zod';
import { configFromObject, loadConfig, resolvedYaml } from '../src/pipeline/config.js';
import { defineStage } from '../src/pipeline/stage.js';
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

// Phase 6: across stages. Each case is a config whose every key is valid on its own.

/** The data stages of the default experiment: lines 2–6 of every config below. */
const DATA = `stages:
  - type: fetch
    url: embedded:mnist
  - type: untar
  - type: decodeIdx
  - type: normalise
`;

async function errorLines(text: string, overrides: string[] = []): Promise<string[]> {
  const error = await loadConfig('x.yaml', { stages: builtinStages, text, overrides }).catch((e) => e);
  if (!(error instanceof ConfigError)) throw new Error(`expected a ConfigError, got ${error}`);
  return error.message.split('\n');
}

test('an evaluated split that no stage before produces is an error at its entry in splits', async (t) => {
  const text = `${DATA}  - type: shuffle\n  - type: sgd\n  - type: evaluate\n    splits: [test, val]\n`;
  t.deepEqual(await errorLines(text), [
    'x.yaml:10:20 stages[6].splits[1]: split "val" is produced by no stage before evaluate (produced: train, test; add shuffle.holdout to hold one out)',
  ]);
  // Held out by the sampler, it is produced; a misspelled one gets a did-you-mean.
  const held = `${DATA}  - type: shuffle\n    holdout: { size: 100 }\n  - type: sgd\n  - type: evaluate\n    splits: [vall]\n`;
  t.deepEqual(await errorLines(held), [
    'x.yaml:11:14 stages[6].splits[0]: split "vall" is produced by no stage before evaluate (did you mean "val"?; produced: train, test, val; add shuffle.holdout to hold one out)',
  ]);
  await t.notThrowsAsync(loadConfig('x.yaml', { stages: builtinStages, text: held.replace('vall', 'val') }));
  // A value from --set is reported against the override.
  t.deepEqual(
    await errorLines(`${DATA}  - type: shuffle\n  - type: sgd\n  - type: evaluate\n`, [
      'evaluate.splits=[val]',
    ]),
    [
      '--set evaluate.splits=[val] stages[6].splits[0]: split "val" is produced by no stage before evaluate (produced: train, test; add shuffle.holdout to hold one out)',
    ],
  );
});

test('sgd with no sampler before it is an error at the sgd stage', async (t) => {
  t.deepEqual(await errorLines(`${DATA}  - type: sgd\n    lr: 0.1\n  - type: evaluate\n`), [
    'x.yaml:7:5 stages[4]: "samples" is produced by no stage before sgd (produced: split:train, split:test, features; add a sampler such as shuffle before it)',
  ]);
});

test('evaluate with no model producer before it is an error at the evaluate stage', async (t) => {
  t.deepEqual(await errorLines(`${DATA}  - type: shuffle\n  - type: evaluate\n`), [
    'x.yaml:8:5 stages[5]: "model" is produced by no stage before evaluate (produced: split:train, split:test, features, samples; add a model producer such as sgd before it)',
  ]);
  // In the wrong order, the message names the stage that comes too late.
  t.deepEqual(
    await errorLines(`${DATA}  - type: shuffle\n  - type: evaluate\n  - type: sgd\n    id: trainer\n`),
    [
      'x.yaml:8:5 stages[5]: "model" is produced by no stage before evaluate (produced: split:train, split:test, features, samples; trainer at stages[6] produces it, but only after evaluate)',
    ],
  );
});

test('checkpoint.keepBest with checkpoints off is an error at checkpoint.keepBest', async (t) => {
  const text = `checkpoint:\n  every: 0\n  keepBest: test.loss\n${DATA}  - type: shuffle\n  - type: sgd\n  - type: evaluate\n`;
  t.deepEqual(await errorLines(text), [
    'x.yaml:3:13 checkpoint.keepBest: keeping the best checkpoint needs checkpoints to choose from: set checkpoint.every or checkpoint.everySeconds (both are 0, so only the final checkpoint is taken)',
  ]);
  for (const set of ['checkpoint.every=100', 'checkpoint.everySeconds=60'])
    await t.notThrowsAsync(loadConfig('x.yaml', { stages: builtinStages, text, overrides: [set] }), set);
});

test('the sample configs and examples/mnist-subset.yaml (a user stage without wiring) validate', async (t) => {
  for (const file of [
    'config/mnist-logreg.yaml',
    'config/mnist-notebook.yaml',
    'config/mnist-remote.yaml',
    'examples/mnist-subset.yaml',
  ]) {
    const result = await runCli(['validate', file]);
    t.is(result.code, 0, `${file}: ${result.stderr}`);
  }
});

test('two wiring errors and a settings error are reported together, sorted, exit 2 from validate and run', async (t) => {
  const file = write(
    [
      'checkpoint:',
      '  keepBest: test.accuracy',
      'stages:',
      '  - type: fetch',
      '  - type: untar',
      '  - type: decodeIdx',
      '  - type: normalise',
      '  - type: sgd',
      '  - type: evaluate',
      '    evry: 100',
      '',
    ].join('\n'),
  );
  const expected = [
    `rxtrain: 3 problems in ${file}:`,
    `${file}:2:13 checkpoint.keepBest: keeping the best checkpoint needs checkpoints to choose from: set checkpoint.every or checkpoint.everySeconds (both are 0, so only the final checkpoint is taken)`,
    `${file}:8:5 stages[4]: "samples" is produced by no stage before sgd (produced: split:train, split:test, features; add a sampler such as shuffle before it)`,
    `${file}:10:5 stages[5].evry: unknown key "evry" (did you mean "every"?); valid keys: every, atStart, splits, misclassified, metric, patience, minDelta`,
  ];
  const validate = await runCli(['validate', file]);
  t.is(validate.code, 2);
  t.deepEqual(validate.stderr.trim().split('\n'), expected);
  const run = await runCli(['run', file, '--run-dir', join(tempDir(), 'run'), '--quiet']);
  t.is(run.code, 2);
  t.deepEqual(run.stderr.trim().split('\n'), expected);
});

test('the phase works from declarations alone: user stages can need and provide their own tokens', async (t) => {
  const maker = defineStage({
    type: 'maker',
    summary: 'provides widgets',
    settings: z.strictObject({ makes: z.string() }),
    wiring: (s) => ({ provides: [`widget:${s.makes}`] }),
    create: () => (input) => input,
  });
  const user = defineStage({
    type: 'user',
    summary: 'needs a widget',
    settings: z.strictObject({ wants: z.string() }),
    wiring: (s) => ({ needs: [{ token: `widget:${s.wants}`, key: ['wants'], hint: 'add a maker' }] }),
    create: () => (input) => input,
  });
  const stages = [...builtinStages, maker, user];
  // untar declares nothing: what came before passes through it.
  const text = (wants: string) =>
    `stages:\n  - type: maker\n    makes: gear\n  - type: untar\n  - type: user\n    wants: ${wants}\n`;
  await t.notThrowsAsync(loadConfig('x.yaml', { stages, text: text('gear') }));
  const error = await loadConfig('x.yaml', { stages, text: text('gaer') }).catch((e) => e);
  t.deepEqual((error as ConfigError).message.split('\n'), [
    'x.yaml:6:12 stages[2].wants: widget "gaer" is produced by no stage before user (did you mean "gear"?; produced: gear; add a maker)',
  ]);
});

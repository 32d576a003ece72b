/**
 * The JSON Schema for experiment files: the committed copies are current, every shipped config
 * names one and validates against it with a maintained validator (ajv), and each mistake that
 * test/config.test.ts shows `validate` rejecting is rejected by the schema too — or is listed
 * below as one JSON Schema cannot express (wiring between stages, unique ids), with `validate`
 * still rejecting it.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import test from 'ava';
import { parse } from 'yaml';
import { generatedSchema, SHIPPED_SCHEMAS, SWEEP_SCHEMA, sweepJsonSchema } from '../scripts/schema.js';
import { loadConfig } from '../src/pipeline/config.js';
import { builtinStages } from '../src/stages/index.js';
import { ROOT, runCli, tempDir } from './helpers/index.js';
import { jsonSchemaValidator, type Validate } from './helpers/jsonSchemaValidator.js';

const validator = await jsonSchemaValidator();
const ajvTest = validator ? test : test.skip;
const needsAjv = (title: string) =>
  validator ? title : `${title} — SKIPPED: ajv is not installed (npm install --save-dev ajv)`;

const schemaOf = (file: string) => JSON.parse(readFileSync(join(ROOT, file), 'utf8')) as object;
const validateBuiltin = (): Validate => validator!.compile(schemaOf('schema/experiment.schema.json'));

test('the committed schemas match the stages’ schemas (run `npm run schema` to update)', async (t) => {
  // Compared as JSON: the committed files are laid out by the formatter (biome), not by JSON.stringify.
  for (const entry of SHIPPED_SCHEMAS)
    t.deepEqual(schemaOf(entry.file), JSON.parse(await generatedSchema(entry)), entry.file);
});

test('the committed sweep-file schema matches the sweep schema (run `npm run schema` to update)', (t) => {
  t.deepEqual(schemaOf(SWEEP_SCHEMA), JSON.parse(sweepJsonSchema()));
});

ajvTest(needsAjv('every shipped config names its schema on its first line and validates against it'), (t) => {
  const configs = ['config', 'examples'].flatMap((d) =>
    readdirSync(join(ROOT, d))
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => `${d}/${f}`),
  );
  t.true(configs.length >= 5);
  for (const config of configs) {
    const text = readFileSync(join(ROOT, config), 'utf8');
    const modeline = /^# yaml-language-server: \$schema=(\S+)\n/.exec(text);
    t.truthy(modeline, `${config}: no modeline`);
    const schemaFile = join(dirname(config), modeline![1]!);
    const validate = validator!.compile(schemaOf(schemaFile));
    t.true(validate(parse(text)), `${config}: ${JSON.stringify(validate.errors)}`);
  }
});

/** The data stages of the default experiment, then a complete valid pipeline. */
const DATA = `stages:
  - type: fetch
    url: embedded:mnist
  - type: untar
  - type: decodeIdx
  - type: normalise
`;
const VALID = `${DATA}  - type: shuffle\n  - type: sgd\n  - type: evaluate\n`;

/** Mistakes from test/config.test.ts (and the refinements beside them), each in an otherwise valid config. */
const REJECTED_BY_BOTH: [string, string][] = [
  ['unknown stage type', VALID.replace('type: untar', 'type: untarr')],
  ['a string for a number', VALID.replace('type: sgd', 'type: sgd\n    lr: "fast"')],
  ['a misspelled stage key', VALID.replace('type: sgd', 'type: sgd\n    epohcs: 5')],
  ['a misspelled evaluate key', VALID.replace('type: evaluate', 'type: evaluate\n    evry: 100')],
  ['an unknown init type', VALID.replace('type: sgd', 'type: sgd\n    init: {type: uniform}')],
  ['an unknown schedule shorthand', VALID.replace('type: sgd', 'type: sgd\n    schedule: linear')],
  ['a batch size of 0', VALID.replace('type: sgd', 'type: sgd\n    batchSize: 0')],
  ['a negative learning rate', VALID.replace('type: sgd', 'type: sgd\n    lr: -1')],
  [
    'holdout with both size and fraction',
    VALID.replace('type: shuffle', 'type: shuffle\n    holdout: {size: 3, fraction: 0.1}'),
  ],
  ['holdout with neither', VALID.replace('type: shuffle', 'type: shuffle\n    holdout: {split: val}')],
  ['a misspelled top-level key', `seeed: 1\n${VALID}`],
  ['keepBest with checkpoints off', `checkpoint:\n  every: 0\n  keepBest: test.loss\n${VALID}`],
  ['a stage without type', VALID.replace('  - type: untar\n', '  - include: ["*"]\n')],
  ['a bad stage id', VALID.replace('type: sgd', 'type: sgd\n    id: 9lives')],
  [
    'patience without evaluations',
    VALID.replace('type: evaluate', 'type: evaluate\n    every: 0\n    patience: 3'),
  ],
  [
    'a mean without a std',
    VALID.replace('type: normalise', 'type: normalise\n    standardise: global\n    mean: 0.1'),
  ],
];

/** Mistakes `validate` finds by reading across stages or values: beyond what JSON Schema can state. */
const VALIDATE_ONLY: [string, string][] = [
  ['two stages with one id', `${VALID}  - type: sgd\n`],
  [
    'nesterov without momentum (a refinement not restated)',
    VALID.replace('type: sgd', 'type: sgd\n    nesterov: true'),
  ],
  [
    'an evaluated split no stage produces',
    VALID.replace('type: evaluate', 'type: evaluate\n    splits: [test, val]'),
  ],
  ['sgd with no sampler before it', `${DATA}  - type: sgd\n  - type: evaluate\n`],
  ['evaluate with no model before it', `${DATA}  - type: shuffle\n  - type: evaluate\n`],
  [
    'a metric on a split not evaluated',
    VALID.replace('type: evaluate', 'type: evaluate\n    metric: val.accuracy'),
  ],
];

ajvTest(needsAjv('each mistake validate rejects is rejected by the JSON Schema too'), async (t) => {
  const validate = validateBuiltin();
  t.true(validate(parse(VALID)), 'the base config is valid');
  await t.notThrowsAsync(loadConfig('x.yaml', { stages: builtinStages, text: VALID }));
  for (const [what, text] of REJECTED_BY_BOTH) {
    await t.throwsAsync(
      loadConfig('x.yaml', { stages: builtinStages, text }),
      undefined,
      `validate: ${what}`,
    );
    t.false(validate(parse(text)), `schema: ${what}`);
  }
  for (const [what, text] of VALIDATE_ONLY) {
    await t.throwsAsync(
      loadConfig('x.yaml', { stages: builtinStages, text }),
      undefined,
      `validate: ${what}`,
    );
    t.true(validate(parse(text)), `beyond the schema: ${what}`);
  }
});

ajvTest(needsAjv('schema errors point at the stage’s own keys'), (t) => {
  const validate = validateBuiltin();
  validate(parse(VALID.replace('type: sgd', 'type: sgd\n    epohcs: 5')));
  t.true(
    validate.errors!.some(
      (e) =>
        e.instancePath === '/stages/5' &&
        e.keyword === 'additionalProperties' &&
        JSON.stringify(e.params).includes('epohcs'),
    ),
    JSON.stringify(validate.errors),
  );
});

test('rxtrain schema prints the schema; --config adds its user stages; a bad config is one line, exit 2', async (t) => {
  const plain = await runCli(['schema']);
  t.is(plain.code, 0, plain.stderr);
  t.deepEqual(JSON.parse(plain.stdout), schemaOf('schema/experiment.schema.json'));
  const withModules = await runCli(['schema', '--config', 'examples/mnist-running-count.yaml']);
  t.is(withModules.code, 0, withModules.stderr);
  const types = JSON.parse(withModules.stdout).properties.stages.items.properties.type.enum;
  t.deepEqual(types.slice(-2), ['subset', 'runningCount']);
  const out = join(tempDir(), 'schema.json');
  const written = await runCli(['schema', '--out', out]);
  t.is(written.code, 0);
  t.regex(written.stdout, new RegExp(`^wrote .*schema\\.json \\(${builtinStages.length} stage types\\)\\n$`));

  const broken = join(tempDir(), 'broken.yaml');
  writeFileSync(broken, 'modules: [./nowhere.js]\nstages: []\n');
  const bad = await runCli(['schema', '--config', broken]);
  t.is(bad.code, 1);
  t.is(bad.stderr.trim().split('\n').length, 1, bad.stderr);
  t.regex(bad.stderr, /^rxtrain: E_CONFIG: .*broken\.yaml: modules\[0\]: cannot load stage module/);
  const missing = await runCli(['schema', '--config', join(tempDir(), 'none.yaml')]);
  t.is(missing.code, 2);
  t.regex(missing.stderr, /^rxtrain: E_USAGE: .*none\.yaml: cannot read config \(ENOENT\)\n$/);
});

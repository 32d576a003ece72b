import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import test from 'ava';
import { z } from 'zod';
import {
  builtinStages,
  ConfigError,
  configFromObject,
  defineStage,
  loadConfig,
  type Message,
  mapFlow,
  runExperiment,
} from '../src/index.js';
import { ROOT, runCli, tempDir } from './helpers/index.js';

test('a pipeline built and run from TypeScript, with a stage defined in code', async (t) => {
  let seenTrain = 0;
  // A user stage: counts training examples on their way to the sampler, passes everything on.
  const counter = defineStage({
    type: 'countExamples',
    summary: 'count examples of a split',
    settings: z.strictObject({ split: z.string().default('train') }),
    create: (settings, ctx) => (input) =>
      mapFlow<Message, Message>(input, (m) => {
        if (m.kind === 'examples' && m.split === settings.split) {
          seenTrain += m.count;
          ctx.progress({ seen: seenTrain });
        }
        return m;
      }),
  });
  const config = await configFromObject(
    {
      name: 'api',
      stages: [
        { type: 'fetch' },
        { type: 'untar' },
        { type: 'decodeIdx' },
        { type: 'countExamples' },
        { type: 'normalise' },
        { type: 'shuffle', mode: 'with-replacement' },
        { type: 'sgd', batchSize: 32, steps: 200 },
        { type: 'evaluate', every: 100 },
      ],
    },
    { stages: [...builtinStages, counter] },
  );
  const events: string[] = [];
  const summary = await runExperiment({
    config,
    runDir: join(tempDir(), 'run'),
    cacheDir: tempDir(),
    onEvent: (e) => events.push(e.type),
  });
  t.is(seenTrain, 60000);
  t.is(summary.steps, 200);
  t.true(summary.test!.accuracy > 0.8);
  t.true(events.includes('eval'));
});

test('a stage from a user module named in the YAML is validated and composed like a built-in', async (t) => {
  const dir = tempDir();
  const api = pathToFileURL(join(ROOT, 'dist/src/index.js')).href;
  writeFileSync(
    join(dir, 'double.mjs'),
    `import { defineStage, mapFlow } from '${api}';
import { z } from '${pathToFileURL(join(ROOT, 'node_modules/zod/index.js')).href}';
export const tag = defineStage({
  type: 'tag',
  summary: 'tag',
  settings: z.strictObject({ label: z.string() }),
  create: (s, ctx) => (input) => mapFlow(input, (m) => { ctx.progress({ label: s.label }); return m; }),
});
`,
  );
  const yaml = (label: string) =>
    `name: with-module\nmodules: [./double.mjs]\nstages:\n  - type: fetch\n  - type: tag\n    ${label}\n  - type: untar\n  - type: decodeIdx\n  - type: normalise\n  - type: shuffle\n  - type: sgd\n    steps: 50\n  - type: evaluate\n`;
  writeFileSync(join(dir, 'good.yaml'), yaml('label: hello'));
  writeFileSync(join(dir, 'bad.yaml'), yaml('lable: hello'));
  const config = await loadConfig(join(dir, 'good.yaml'), { stages: builtinStages });
  t.deepEqual(
    config.stages.map((s) => s.type),
    ['fetch', 'tag', 'untar', 'decodeIdx', 'normalise', 'shuffle', 'sgd', 'evaluate'],
  );
  const error = await loadConfig(join(dir, 'bad.yaml'), { stages: builtinStages }).catch((e) => e);
  t.true(error instanceof ConfigError);
  t.deepEqual(
    (error as ConfigError).issues.map((i) => [i.line, i.path]),
    [
      [5, 'stages[1].label'],
      [6, 'stages[1].lable'],
    ],
  );
  t.regex((error as ConfigError).issues[0]!.message, /^missing \(expected string\)$/);
  t.regex((error as ConfigError).issues[1]!.message, /unknown key "lable" \(did you mean "label"\?\)/);
  const r = await runCli(['run', join(dir, 'good.yaml'), '--run-dir', join(dir, 'run'), '--quiet']);
  t.is(r.code, 0, r.stderr);
});

test('examples/mnist-subset.yaml runs its user stage from examples/subset-stage.js', async (t) => {
  const r = await runCli([
    'run',
    'examples/mnist-subset.yaml',
    '--run-dir',
    join(tempDir(), 'run'),
    '--set',
    'sgd.epochs=2',
  ]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /after 126 steps \(2\.00 epochs\)/, '2000 examples / batch 32 = 63 steps per epoch');
});

test('a module that cannot be loaded is a config error at its line', async (t) => {
  const dir = tempDir();
  writeFileSync(join(dir, 'x.yaml'), 'modules: [./missing.mjs]\nstages:\n  - type: fetch\n');
  const error = await loadConfig(join(dir, 'x.yaml'), { stages: builtinStages }).catch((e) => e);
  t.true(error instanceof ConfigError);
  t.is((error as ConfigError).issues[0]!.line, 1);
  t.regex((error as ConfigError).issues[0]!.message, /cannot load stage module/);
});

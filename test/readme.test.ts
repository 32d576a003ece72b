import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { generatedReference } from '../scripts/docs.js';
import { ROOT, tempDir } from './helpers/index.js';

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');

test('the README stage reference matches the stages\u2019 schemas (run `npm run docs` to update)', (t) => {
  t.true(readme.includes(generatedReference()));
});

test('the Quick start shows exactly two command lines: run the default experiment, run the tests', (t) => {
  const quick = readme.slice(
    readme.indexOf('## Quick start'),
    readme.indexOf('\n## ', readme.indexOf('## Quick start') + 1),
  );
  const block = quick.match(/```sh\n([\s\S]*?)```/)![1]!;
  t.deepEqual(block.trim().split('\n'), ['npm install && npm start', 'npm install && npm test']);
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  t.regex(pkg.scripts.start, /run config\/mnist-logreg\.yaml$/);
});

test('every config named in the README exists and validates (sweep files as sweeps)', async (t) => {
  const { loadConfig } = await import('../src/pipeline/config.js');
  const { loadSweep } = await import('../src/sweep/sweepFile.js');
  const { builtinStages } = await import('../src/stages/index.js');
  const configs = [...new Set(readme.match(/(config|examples)\/[\w-]+\.yaml/g))];
  t.true(configs.length >= 4);
  for (const c of configs) {
    const file = join(ROOT, c);
    const isSweep = /^parameters:/m.test(readFileSync(file, 'utf8'));
    const loaded = isSweep
      ? loadSweep(file, { stages: builtinStages, inlineBaseFile: () => join(ROOT, 'base.yaml') })
      : loadConfig(file, { stages: builtinStages });
    await t.notThrowsAsync(loaded, c);
  }
});

test('the Events section’s jq recipe works over several runs (jq reads each file, names it)', (t) => {
  const recipe = /```sh\n# the test-accuracy curves[^\n]*\n([^\n]+)\n```/.exec(readme)?.[1];
  t.truthy(recipe, 'the recipe is in the README');
  if (spawnSync('jq', ['--version']).status !== 0) {
    t.log('jq is not installed here: only its presence in the README was checked');
    return;
  }
  const dir = tempDir();
  const event = (step: number, accuracy: number) =>
    `${JSON.stringify({ type: 'eval', step, split: 'test', accuracy, loss: 1 })}\n`;
  for (const [run, events] of [
    ['mnist-logreg-20261202-100000', `{"type":"train","step":1}\n${event(0, 0.1)}${event(500, 0.9)}`],
    ['mnist-logreg-20261202-110000', event(0, 0.2)],
  ] as const) {
    mkdirSync(join(dir, 'runs', run), { recursive: true });
    writeFileSync(join(dir, 'runs', run, 'events.ndjson'), events);
  }
  const r = spawnSync('sh', ['-c', recipe!], { cwd: dir, encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  t.deepEqual(
    r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l)),
    [
      { run: 'runs/mnist-logreg-20261202-100000/events.ndjson', step: 0, accuracy: 0.1 },
      { run: 'runs/mnist-logreg-20261202-100000/events.ndjson', step: 500, accuracy: 0.9 },
      { run: 'runs/mnist-logreg-20261202-110000/events.ndjson', step: 0, accuracy: 0.2 },
    ],
  );
});

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { generatedReference } from '../scripts/docs.js';
import { ROOT } from './helpers/index.js';

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

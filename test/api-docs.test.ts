import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { generatedApiReference } from '../scripts/api-docs.js';
import { ROOT } from './helpers/index.js';

test('docs/api.md is generated from the source and up to date (run `npm run docs` to update)', (t) => {
  const onDisk = readFileSync(join(ROOT, 'docs/api.md'), 'utf8');
  const generated = generatedApiReference();
  t.true(onDisk === generated, 'docs/api.md differs from what the source generates');
  // Every export documented: the stage author's contract among them.
  for (const name of [
    'defineStage',
    'StageContext',
    'StageState',
    'transform',
    'loadConfig',
    'Examples',
    'SplitEnd',
  ])
    t.regex(generated, new RegExp(`### \`${name}\``), name);
});

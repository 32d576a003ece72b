/**
 * The lower layers import only what is below them: util nothing else in src, formats only util,
 * download only util and formats. Nothing there may reach up into pipeline/, stages/, report/ or
 * cli/.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import test from 'ava';
import { ROOT } from './helpers/index.js';

const SRC = join(ROOT, 'src');

const ALLOWED: Record<string, readonly string[]> = {
  util: ['util'],
  formats: ['util', 'formats'],
  download: ['util', 'formats', 'download'],
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? sourceFiles(join(dir, entry.name))
      : entry.name.endsWith('.ts')
        ? [join(dir, entry.name)]
        : [],
  );
}

for (const [layer, allowed] of Object.entries(ALLOWED)) {
  test(`src/${layer} imports only ${allowed.join(', ')} from src`, (t) => {
    const problems: string[] = [];
    for (const file of sourceFiles(join(SRC, layer))) {
      const text = readFileSync(file, 'utf8');
      for (const [, specifier] of text.matchAll(/(?:from|import)\s*\(?\s*'(\.[^']*)'/g)) {
        const target = relative(SRC, resolve(dirname(file), specifier!));
        const top = target.includes('/') ? target.split('/')[0]! : '(src root)';
        if (!allowed.includes(top)) problems.push(`${relative(ROOT, file)} imports ${specifier}`);
      }
    }
    t.deepEqual(problems, []);
  });
}

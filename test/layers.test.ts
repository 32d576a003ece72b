/**
 * The layering of src/ (docs/architecture.md): every import points to a lower layer or stays in its
 * own folder, and no source file grows past 400 lines. Reads the sources, so it fails the moment
 * an import points up.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import test from 'ava';
import { ROOT } from './helpers/index.js';

const SRC = join(ROOT, 'src');

/** Rank of each top-level folder (or file) of src/: a module may import only lower ranks. */
const RANK: Record<string, number> = {
  util: 0,
  kernels: 1,
  formats: 1,
  flow: 2,
  download: 2,
  pipeline: 3,
  stages: 4,
  sweep: 5,
  queue: 6,
  progress: 6,
  report: 6,
  'reference.ts': 6,
  serve: 7,
  cli: 8,
  'cli.ts': 9,
  'cliRun.ts': 9,
  'index.ts': 9,
};

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

const layerOf = (file: string) => relative(SRC, file).split(/[\\/]/)[0]!;

test('every import in src/ points to a lower layer or stays in its folder', (t) => {
  const upward: string[] = [];
  for (const file of sources(SRC)) {
    const from = layerOf(file);
    t.not(RANK[from], undefined, `${relative(ROOT, file)}: src/${from} has no rank in this test`);
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
      const target = resolve(dirname(file), match[1]!);
      const to = layerOf(target.replace(/\.js$/, '.ts'));
      if (to === from) continue;
      if (!(RANK[to]! < RANK[from]!))
        upward.push(`${relative(ROOT, file)} imports ${match[1]} (${from} → ${to})`);
    }
  }
  t.deepEqual(upward, []);
});

test('no source file in src/ is longer than 400 lines', (t) => {
  const long = sources(SRC)
    .map((file) => ({ file: relative(ROOT, file), lines: readFileSync(file, 'utf8').split('\n').length - 1 }))
    .filter((f) => f.lines > 400);
  t.deepEqual(long, []);
});

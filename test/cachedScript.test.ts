import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import test from 'ava';
import { loadCached, WRAPPER_HEAD, WRAPPER_TAIL } from '../src/cli/cachedScript.js';
import { importModule, LENT_IMPORT } from '../src/util/importModule.js';
import { tempDir } from './helpers/index.js';

const dir = tempDir();

// A module that needs what a CommonJS bundle needs: require, __filename, and an ES module imported
// at run time, through the import its loader lends it (util/importModule.ts).
writeFileSync(join(dir, 'answer.mjs'), 'export const answer = 42;\n');
const source = `const { basename } = require('node:path');
module.exports = {
  name: basename(__filename),
  square: (x) => x * x,
  answer: async () =>
    (await globalThis[Symbol.for('rxtrain.import')](${JSON.stringify(pathToFileURL(join(dir, 'answer.mjs')).href)})).answer,
};
`;
const lent: string[] = [];
(globalThis as Record<symbol, unknown>)[LENT_IMPORT] = (url: string) => {
  lent.push(url);
  return import(url);
};

test('importModule goes through the lent import when there is one', async (t) => {
  const url = pathToFileURL(join(dir, 'answer.mjs')).href;
  t.is((await importModule(url)).answer, 42);
  t.true(lent.includes(url));
});

test.serial(
  'a script runs with require, __filename and import(); its cache is written, then used',
  async (t) => {
    const file = join(dir, 'lib.cjs');
    const cacheFile = `${file}.v8cache`;
    writeFileSync(file, source);
    type Lib = { name: string; square(x: number): number; answer(): Promise<number> };

    const first = loadCached<Lib>(file, cacheFile);
    t.is(first.cache, 'absent');
    t.is(first.exports.name, 'lib.cjs');
    t.is(first.exports.square(7), 49);
    t.is(await first.exports.answer(), 42);
    first.save();
    const written = statSync(cacheFile).mtimeMs;

    const second = loadCached<Lib>(file, cacheFile);
    t.is(second.cache, 'used');
    t.is(second.exports.square(9), 81);
    second.save();
    t.is(statSync(cacheFile).mtimeMs, written, 'a cache that was used is not written again');
  },
);

test.serial(
  'a damaged cache or a changed source is rejected, the script still runs, and a fresh cache replaces it',
  (t) => {
    const file = join(dir, 'other.cjs');
    const cacheFile = `${file}.v8cache`;
    writeFileSync(file, source);
    const first = loadCached<{ square(x: number): number }>(file, cacheFile);
    first.exports.square(1);
    first.save();
    const good = readFileSync(cacheFile);

    // One flipped bit in V8's part: handed to V8, damaged bytes can kill the process (V8 does not
    // check them; measured: a fatal "unreachable code"), so the file's own CRC must catch it.
    const damaged = Buffer.from(good);
    damaged[damaged.length >> 1]! ^= 0x10;
    writeFileSync(cacheFile, damaged);
    const afterDamage = loadCached<{ square(x: number): number }>(file, cacheFile);
    t.is(afterDamage.cache, 'rejected');
    t.is(afterDamage.exports.square(3), 9);
    afterDamage.save();
    t.is(loadCached(file, cacheFile).cache, 'used', 'rewritten after the rejection');
    writeFileSync(cacheFile, 'not a cache at all');
    t.is(loadCached(file, cacheFile).cache, 'rejected');

    writeFileSync(file, `${source}module.exports.extra = 1;\n`);
    const changed = loadCached<{ extra: number }>(file, cacheFile);
    t.is(changed.cache, 'rejected');
    t.is(changed.exports.extra, 1);
  },
);

test('a cache that cannot be written is no error', (t) => {
  const file = join(dir, 'plain.cjs');
  writeFileSync(file, 'module.exports = 5;\n');
  const loaded = loadCached<number>(file, join(dir, 'no-such-dir', 'plain.cjs.v8cache'));
  t.is(loaded.exports, 5);
  t.notThrows(() => loaded.save());
});

test('a script that is not ASCII is read as UTF-8, an ASCII one as Latin-1, both to the same text', (t) => {
  const file = join(dir, 'text.cjs');
  // Multi-byte letters in a string and in a comment: read as Latin-1 they would be mojibake.
  writeFileSync(file, "// Gaußian ✓\nmodule.exports = { word: 'naïve – 數字' };\n");
  const loaded = loadCached<{ word: string }>(file, `${file}.v8cache`);
  t.is(loaded.exports.word, 'naïve – 數字');
  const ascii = join(dir, 'ascii.cjs');
  writeFileSync(ascii, "module.exports = { word: 'na\\u00efve', tilde: '~\\x7f' };\n");
  t.deepEqual(loadCached<{ word: string; tilde: string }>(ascii, `${ascii}.v8cache`).exports, {
    word: 'naïve',
    tilde: '~\x7f',
  });
});

test.serial('a file that carries the CommonJS wrapper already runs as written, cache and all', (t) => {
  const file = join(dir, 'wrapped.cjs');
  const cacheFile = `${file}.v8cache`;
  writeFileSync(
    file,
    `${WRAPPER_HEAD}${source}${WRAPPER_TAIL}\n//# a trailing comment, as a bundle's source map line\n`,
  );
  type Lib = { name: string; square(x: number): number };
  const first = loadCached<Lib>(file, cacheFile);
  t.is(first.exports.name, 'wrapped.cjs');
  t.is(first.exports.square(5), 25);
  first.save();
  const second = loadCached<Lib>(file, cacheFile);
  t.is(second.cache, 'used');
  t.is(second.exports.square(6), 36);
});

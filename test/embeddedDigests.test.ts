/**
 * The embedded MNIST's digests are known without hashing (download/embeddedDigests.ts): the table
 * must be what the installed files hold, and must not vouch for any other file.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { EMBEDDED_DIGESTS, knownDigest } from '../src/download/embeddedDigests.js';
import { localFingerprint } from '../src/download/fingerprint.js';
import { embeddedMnistDir, selectLocalFiles } from '../src/download/sources.js';
import { tempDir } from './helpers/index.js';

const dir = embeddedMnistDir();

test('the table holds the installed files’ sizes and sha256', (t) => {
  for (const [name, known] of Object.entries(EMBEDDED_DIGESTS)) {
    const bytes = readFileSync(join(dir, name));
    t.is(bytes.length, known.size, name);
    t.is(createHash('sha256').update(bytes).digest('hex'), known.sha256, name);
    t.is(knownDigest(join(dir, name), bytes.length), known.sha256);
  }
});

test('no digest for a file of another size, name or directory', (t) => {
  const name = 't10k-labels-idx1-ubyte';
  const size = statSync(join(dir, name)).size;
  t.is(knownDigest(join(dir, name), size + 1), undefined);
  t.is(knownDigest(join(dir, 'README.md'), size), undefined);
  const copy = join(tempDir(), name);
  copyFileSync(join(dir, name), copy);
  t.is(knownDigest(copy, size), undefined, 'a copy elsewhere is hashed like any file');
});

test('the embedded source’s key is the one its bytes give, with nothing hashed or remembered', async (t) => {
  const files = selectLocalFiles(dir, 'embedded:mnist', undefined);
  const memo = join(tempDir(), 'stages', 'fingerprints.json');
  const parts = files.map((f) => ({
    name: f.name,
    size: f.size,
    sha256: createHash('sha256').update(readFileSync(f.path)).digest('hex'),
  }));
  const expected = `local:${createHash('sha256').update(JSON.stringify(parts)).digest('hex')}`;
  t.is(await localFingerprint(files, memo, true), expected, 'known even when only known digests may be used');
  t.false(existsSync(memo), 'no memo written');
});

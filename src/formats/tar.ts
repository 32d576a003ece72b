/**
 * The tar format, as far as reading archives safely needs it: recognising a tar header, judging an
 * entry's name and type, wording tar-stream's errors, and telling when decompression has gone past
 * what a sane archive produces (a decompression bomb). The parsing itself is tar-stream's.
 */
import type { Header } from 'tar-stream';

/** Tar is a sequence of 512-byte blocks; an archive starts with a header block. */
export const TAR_BLOCK_BYTES = 512;

/** A tar header block: `ustar` magic, or (old v7 archives) a checksum that adds up. */
export function isTarHeader(block: Uint8Array): boolean {
  if (block.length < TAR_BLOCK_BYTES) return false;
  if (String.fromCharCode(...block.subarray(257, 262)) === 'ustar') return true;
  const stored = Number.parseInt(String.fromCharCode(...block.subarray(148, 156)).replace(/[\0 ]/g, ''), 8);
  if (!Number.isFinite(stored)) return false;
  // The checksum is computed with its own 8 bytes read as spaces.
  let sum = 0;
  for (let i = 0; i < TAR_BLOCK_BYTES; i++) sum += i >= 148 && i < 156 ? 32 : block[i]!;
  return sum === stored && block[0] !== 0;
}

/**
 * Why an entry must not be used, or undefined. Nothing is written to disk, but a name that climbs
 * out of the archive, an absolute path or a link says the archive was built to escape its
 * directory: it is skipped, never followed, and reported.
 */
export function unsafeEntry(
  header: Pick<Header, 'name' | 'type'> & { linkname?: string | null },
): string | undefined {
  if (header.type === 'symlink') return `a symbolic link (to ${header.linkname ?? '?'})`;
  if (header.type === 'link') return `a hard link (to ${header.linkname ?? '?'})`;
  if (/^([\\/]|[A-Za-z]:)/.test(header.name)) return 'an absolute path';
  if (header.name.split(/[\\/]/).includes('..')) return 'a path that climbs out with ".."';
  return undefined;
}

/** tar-stream's error, in words for someone holding the archive. */
export function describeTarError(error: Error): string {
  if (/unexpected end/i.test(error.message)) return 'archive is truncated (unexpected end of data)';
  return `corrupt tar archive: ${error.message}`;
}

/** A small file may compress extremely well; the ratio limit applies past this much output. */
export const RATIO_GRACE_BYTES = 16 * 2 ** 20;

/** Bytes into and out of one decompressor. */
export interface Inflation {
  in: number;
  out: number;
}

/** How far decompressing one input file may go. */
export interface ExpansionLimits {
  /** Most entries one archive may hold. */
  maxEntries: number;
  /** Most bytes all decompression of one input file may produce. */
  maxBytes: number;
  /** Most bytes out per compressed byte in, past RATIO_GRACE_BYTES out (0: no limit). */
  maxRatio: number;
}

/**
 * Which byte limit decompression has crossed, if any: `bytes` when all decompressors of the file
 * together produced more than `maxBytes`, `ratio` when this one expands too far.
 */
export function expansionExceeded(
  meter: Inflation,
  expandedTotal: number,
  limits: Pick<ExpansionLimits, 'maxBytes' | 'maxRatio'>,
): 'bytes' | 'ratio' | undefined {
  if (expandedTotal > limits.maxBytes) return 'bytes';
  if (limits.maxRatio > 0 && meter.out > RATIO_GRACE_BYTES && meter.out > limits.maxRatio * meter.in) {
    return 'ratio';
  }
  return undefined;
}

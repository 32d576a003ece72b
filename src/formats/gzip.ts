/**
 * gzip data: recognised by its first two bytes, checked by decompressing it. Content decides, not
 * a file name: an archive called `.tar` may be gzipped, and a `.gz` may be plain.
 */
import { createReadStream } from 'node:fs';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';

/** The bytes every gzip member starts with (RFC 1952, ID1 and ID2). */
export const GZIP_MAGIC = [0x1f, 0x8b] as const;

/** Do these bytes (the start of a file) begin with the gzip magic? */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === GZIP_MAGIC[0] && bytes[1] === GZIP_MAGIC[1];
}

/**
 * Decompress a gzip file to nowhere: zlib checks each member's CRC-32 and length in its trailer,
 * so a truncated or corrupted file fails here. Resolves with the reason, or undefined when sound.
 */
export async function gzipDefect(path: string): Promise<string | undefined> {
  try {
    await pipeline(
      createReadStream(path),
      createGunzip(),
      new Writable({
        write(_chunk, _encoding, callback) {
          callback();
        },
      }),
    );
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

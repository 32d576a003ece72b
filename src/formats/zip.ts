/**
 * The zip format, as far as reading an archive front to back needs it (EMNIST ships as
 * `gzip.zip`): recognising one, and parsing the local file header in front of each entry. The
 * central directory at the end is not needed to stream the entries and is not read.
 *
 *   local file header    "PK\3\4", version, flags, method, time, date, crc-32, compressed size,
 *                        size (little-endian), name length, extra length, name, extra
 *   data                 stored (method 0) or raw deflate (method 8)
 *   data descriptor      when flag bit 3 is set: ["PK\7\8"], crc-32, compressed size, size
 *   …
 *   central directory    "PK\1\2" …, then "PK\5\6": the end
 *
 * Sizes of 0xffffffff are zip64's: the 64-bit sizes are in the extra field (id 0x0001).
 */
import { crc32, deflateRawSync } from 'node:zlib';

export const ZIP_LOCAL = 0x04034b50;
export const ZIP_CENTRAL = 0x02014b50;
export const ZIP_END = 0x06054b50;
export const ZIP_DESCRIPTOR = 0x08074b50;
/** Bytes of a local header before its name. */
export const ZIP_LOCAL_FIXED = 30;

/** A zip archive starts with a local file header (or, empty, with the end record). */
export function isZip(head: Uint8Array): boolean {
  if (head.length < 4) return false;
  const sig = readU32(head, 0);
  return sig === ZIP_LOCAL || sig === ZIP_END;
}

export interface ZipLocalHeader {
  name: string;
  /** 0 stored, 8 deflate. */
  method: number;
  flags: number;
  /** Sizes from the header; undefined when they follow the data (flag bit 3). */
  compressedSize: number | undefined;
  size: number | undefined;
  /** Bytes of the header with its name and extra field. */
  headerBytes: number;
}

/** The local header at the start of `bytes`; undefined until all its bytes are there. Throws a message on nonsense. */
export function parseZipLocalHeader(bytes: Uint8Array): ZipLocalHeader | undefined {
  if (bytes.length < ZIP_LOCAL_FIXED) return undefined;
  const flags = readU16(bytes, 6);
  const method = readU16(bytes, 8);
  let compressedSize: number | undefined = readU32(bytes, 18);
  let size: number | undefined = readU32(bytes, 22);
  const nameLength = readU16(bytes, 26);
  const extraLength = readU16(bytes, 28);
  const headerBytes = ZIP_LOCAL_FIXED + nameLength + extraLength;
  if (bytes.length < headerBytes) return undefined;
  const name = new TextDecoder().decode(bytes.subarray(ZIP_LOCAL_FIXED, ZIP_LOCAL_FIXED + nameLength));
  // zip64: the real sizes are in the extra field, size first.
  for (let o = ZIP_LOCAL_FIXED + nameLength; o + 4 <= headerBytes; ) {
    const id = readU16(bytes, o);
    const length = readU16(bytes, o + 2);
    if (id === 0x0001) {
      let at = o + 4;
      if (size === 0xffffffff && at + 8 <= o + 4 + length) {
        size = readU64(bytes, at);
        at += 8;
      }
      if (compressedSize === 0xffffffff && at + 8 <= o + 4 + length) compressedSize = readU64(bytes, at);
    }
    o += 4 + length;
  }
  if (flags & 8 && compressedSize === 0) {
    compressedSize = undefined;
    size = undefined;
  }
  return { name, method, flags, compressedSize, size, headerBytes };
}

export function readU16(b: Uint8Array, o: number): number {
  return b[o]! | (b[o + 1]! << 8);
}

export function readU32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}

function readU64(b: Uint8Array, o: number): number {
  return readU32(b, o) + readU32(b, o + 4) * 2 ** 32;
}

export interface ZipEntryInput {
  name: string;
  data: Uint8Array;
  /** Deflate the data (default) or store it. */
  deflate?: boolean;
  /** Put the sizes in a data descriptor after the data, as streaming zip writers do. */
  descriptor?: boolean;
}

/** A zip archive of these entries (tests, and data sets that ship as zips). */
export function encodeZip(entries: readonly ZipEntryInput[]): Uint8Array {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = new TextEncoder().encode(e.name);
    const deflate = e.deflate ?? true;
    const body = deflate ? deflateRawSync(e.data) : e.data;
    const crc = crc32(e.data);
    const flags = e.descriptor ? 8 : 0;
    const local = new Uint8Array(ZIP_LOCAL_FIXED + name.length);
    const v = new DataView(local.buffer);
    v.setUint32(0, ZIP_LOCAL, true);
    v.setUint16(4, 20, true);
    v.setUint16(6, flags, true);
    v.setUint16(8, deflate ? 8 : 0, true);
    if (!e.descriptor) {
      v.setUint32(14, crc, true);
      v.setUint32(18, body.length, true);
      v.setUint32(22, e.data.length, true);
    }
    v.setUint16(26, name.length, true);
    local.set(name, ZIP_LOCAL_FIXED);
    parts.push(local, body);
    if (e.descriptor) {
      const d = new DataView(new ArrayBuffer(16));
      d.setUint32(0, ZIP_DESCRIPTOR, true);
      d.setUint32(4, crc, true);
      d.setUint32(8, body.length, true);
      d.setUint32(12, e.data.length, true);
      parts.push(new Uint8Array(d.buffer));
    }
    const c = new Uint8Array(46 + name.length);
    const cv = new DataView(c.buffer);
    cv.setUint32(0, ZIP_CENTRAL, true);
    cv.setUint16(4, 20, true);
    cv.setUint16(6, 20, true);
    cv.setUint16(8, flags, true);
    cv.setUint16(10, deflate ? 8 : 0, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, body.length, true);
    cv.setUint32(24, e.data.length, true);
    cv.setUint16(28, name.length, true);
    cv.setUint32(42, offset, true);
    c.set(name, 46);
    central.push(c);
    offset += local.length + body.length + (e.descriptor ? 16 : 0);
  }
  const centralBytes = central.reduce((n, c) => n + c.length, 0);
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, ZIP_END, true);
  end.setUint16(8, entries.length, true);
  end.setUint16(10, entries.length, true);
  end.setUint32(12, centralBytes, true);
  end.setUint32(16, offset, true);
  return Buffer.concat([...parts, ...central, new Uint8Array(end.buffer)]);
}

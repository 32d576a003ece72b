/**
 * CRC-32 (the zlib/PNG polynomial) over byte arrays, incrementally: `crc32(b, crc32(a))` is the
 * CRC of a followed by b. zlib's SIMD version (`zlib.crc32`, Node ≥ 20.15) checks 55 MB in about
 * 10 ms, a twentieth of what sha256 costs here, so a cache can afford to check every byte it
 * replays; older Nodes get a table-driven loop, about ten times slower.
 */
import * as zlib from 'node:zlib';

type Crc32 = (data: Uint8Array, value?: number) => number;

const native = (zlib as unknown as { crc32?: Crc32 }).crc32;

let table: Uint32Array | undefined;

function tableCrc32(data: Uint8Array, value = 0): number {
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let crc = ~value >>> 0;
  for (let i = 0; i < data.length; i++) crc = table[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}

/** The CRC-32 of `data`, continuing from `value` (the CRC of what came before; 0 to start). */
export function crc32(data: Uint8Array, value = 0): number {
  return native ? native(data, value) : tableCrc32(data, value);
}

/** The slow path, exported so tests can check it against zlib's. */
export const crc32Table: Crc32 = tableCrc32;

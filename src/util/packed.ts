/**
 * Plain data with typed arrays inside, packed into bytes and back: the encoding that checkpoints
 * and the data-stage cache share. Stage states are small plain data, but some of it is numeric
 * buffers (weights, an optimiser's velocity, a batch of pixels) that JSON would bloat and round
 * badly; those travel as binary sections, every other value as JSON.
 *
 *   json length   uint32 little-endian
 *   json          UTF-8: { value, sections: [{ type, offset, byteLength }] }, where every typed
 *                 array in `value` became { "$typed": <section index> }
 *   padding       zeros up to a multiple of 8 bytes
 *   sections      each typed array's elements, little-endian, each starting at a multiple of 8
 *
 * JSON cannot carry every number: NaN, ±Infinity and −0 become { "$number": "NaN" } and so on, so
 * a state restores bit for bit. Sections with identical contents are stored once (the updater's
 * weights also ride in the model snapshot). Decoding gives each reference its own array.
 * Integrity is the container's job (checkpoint and cache files end with a sha256).
 */
import { createHash } from 'node:crypto';
import { endianness } from 'node:os';

const TYPED = {
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
} as const;

export type TypedArrayName = keyof typeof TYPED;
export type TypedArray =
  | Int8Array<ArrayBufferLike>
  | Uint8Array<ArrayBufferLike>
  | Uint8ClampedArray<ArrayBufferLike>
  | Int16Array<ArrayBufferLike>
  | Uint16Array<ArrayBufferLike>
  | Int32Array<ArrayBufferLike>
  | Uint32Array<ArrayBufferLike>
  | Float32Array<ArrayBufferLike>
  | Float64Array<ArrayBufferLike>
  | BigInt64Array<ArrayBufferLike>
  | BigUint64Array<ArrayBufferLike>;

interface SectionEntry {
  type: TypedArrayName;
  offset: number;
  byteLength: number;
}

const LITTLE_ENDIAN = endianness() === 'LE';

/** Why a value cannot be packed, with the key path where it sits. */
export class PackError extends Error {
  override name = 'PackError';
}

export function isTypedArray(value: unknown): value is TypedArray {
  return ArrayBuffer.isView(value) && !(value instanceof DataView);
}

/** Pack a value of plain objects, arrays, strings, numbers, booleans, null and typed arrays. */
export function pack(value: unknown): Buffer {
  return Buffer.concat(packParts(value, { dedupe: true }));
}

/**
 * One typed array given as runs of its elements that lie in different buffers: packed as the
 * array they make one after another, without joining them first (unpacked, it is that one array).
 */
export class TypedRuns {
  readonly length: number;
  constructor(readonly runs: readonly TypedArray[]) {
    if (runs.length === 0) throw new PackError('TypedRuns: no runs');
    const type = typedName(runs[0]!);
    if (!type || runs.some((r) => typedName(r) !== type))
      throw new PackError('TypedRuns: runs of one typed-array type only');
    this.length = runs.reduce((n, r) => n + r.length, 0);
  }
}

/**
 * The typed-array class `array` is, or derives from (a Node Buffer, which zlib hands out, is a
 * Uint8Array and is stored as one); undefined for none that can be stored.
 */
function typedName(array: TypedArray): TypedArrayName | undefined {
  for (let proto = Object.getPrototypeOf(array); proto; proto = Object.getPrototypeOf(proto)) {
    const name = proto.constructor?.name as TypedArrayName;
    if (Object.hasOwn(TYPED, name) && TYPED[name] === proto.constructor) return name;
  }
  return undefined;
}

/**
 * `pack`'s bytes as parts to write one after another: the header, then each typed array's bytes
 * (a view, not a copy, on a little-endian machine) with its padding. `dedupe` stores arrays with
 * equal contents once (worth it for checkpoint states; not for streams of distinct data, where
 * hashing every array would only cost time).
 */
export function packParts(value: unknown, options: { dedupe?: boolean } = {}): Uint8Array[] {
  const sections: { bytes: Buffer[]; entry: SectionEntry }[] = [];
  const byContent = new Map<string, number>();
  let offset = 0;

  /** A new section of `bytes`, written one after another; its index. */
  const add = (type: TypedArrayName, bytes: Buffer[]): number => {
    const byteLength = bytes.reduce((n, b) => n + b.byteLength, 0);
    sections.push({ bytes, entry: { type, offset, byteLength } });
    offset += pad8(byteLength);
    return sections.length - 1;
  };
  const section = (array: TypedArray): number => {
    const bytes = littleEndianBytes(array);
    const type = typedName(array)!;
    const digest = options.dedupe ? `${type}:${createHash('sha256').update(bytes).digest('hex')}` : undefined;
    const existing = digest === undefined ? undefined : byContent.get(digest);
    if (existing !== undefined) return existing;
    const index = add(type, [bytes]);
    if (digest !== undefined) byContent.set(digest, index);
    return index;
  };
  const runsSection = (runs: TypedRuns): number =>
    add(typedName(runs.runs[0]!)!, runs.runs.map(littleEndianBytes));

  const walk = (v: unknown, path: string): unknown => {
    if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
    if (typeof v === 'number') {
      if (Number.isFinite(v) && !Object.is(v, -0)) return v;
      return { $number: Object.is(v, -0) ? '-0' : String(v) };
    }
    if (v instanceof TypedRuns) return { $typed: runsSection(v) };
    if (isTypedArray(v)) {
      if (!typedName(v)) throw new PackError(`${path}: unsupported ${v.constructor.name}`);
      return { $typed: section(v) };
    }
    if (Array.isArray(v)) {
      return v.map((item, i) => {
        if (item === undefined) throw new PackError(`${path}[${i}]: undefined cannot be stored`);
        return walk(item, `${path}[${i}]`);
      });
    }
    if (typeof v === 'object' && isPlainObject(v)) {
      const out: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(v)) {
        if (item === undefined) continue; // as JSON does: an absent key restores as undefined
        if (key === '$typed' || key === '$number') throw new PackError(`${path}.${key}: reserved key`);
        out[key] = walk(item, path ? `${path}.${key}` : key);
      }
      return out;
    }
    const what = typeof v === 'object' ? (v as object).constructor?.name : typeof v;
    throw new PackError(`${path || '(root)'}: a ${what} cannot be stored (plain data and typed arrays only)`);
  };

  const json = Buffer.from(
    JSON.stringify({ value: walk(value, ''), sections: sections.map((s) => s.entry) }),
  );
  const head = Buffer.alloc(pad8(4 + json.byteLength));
  head.writeUInt32LE(json.byteLength, 0);
  json.copy(head, 4);
  const parts: Uint8Array[] = [head];
  for (const { bytes, entry } of sections) {
    parts.push(...bytes);
    const padding = pad8(entry.byteLength) - entry.byteLength;
    if (padding) parts.push(new Uint8Array(padding));
  }
  return parts;
}

/**
 * Unpack bytes written by `pack`. Throws PackError when they are not well-formed. Typed arrays are
 * views into `bytes` where alignment and byte order allow (a fresh buffer read from disk), copies
 * otherwise.
 */
export function unpack(bytes: Uint8Array): unknown {
  if (bytes.byteLength < 4) throw new PackError(`${bytes.byteLength} bytes is too short`);
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const jsonLength = view.readUInt32LE(0);
  if (4 + jsonLength > view.byteLength) throw new PackError('the JSON part runs past the end');
  let parsed: { value: unknown; sections: SectionEntry[] };
  try {
    parsed = JSON.parse(view.subarray(4, 4 + jsonLength).toString('utf8'));
  } catch (error) {
    throw new PackError(`bad JSON (${(error as Error).message})`);
  }
  if (!parsed || typeof parsed !== 'object' || !Array.isArray(parsed.sections))
    throw new PackError('no section table');
  const base = pad8(4 + jsonLength);
  const sections = parsed.sections;
  for (const [i, s] of sections.entries()) {
    const ctor = TYPED[s?.type];
    if (!ctor || !Number.isInteger(s.offset) || !Number.isInteger(s.byteLength))
      throw new PackError(`section ${i}: bad entry`);
    if (s.byteLength % ctor.BYTES_PER_ELEMENT !== 0 || s.offset % 8 !== 0)
      throw new PackError(`section ${i}: misaligned`);
    if (base + s.offset + s.byteLength > view.byteLength)
      throw new PackError(`section ${i}: runs past the end`);
  }
  const used = new Set<number>();
  const walk = (v: unknown): unknown => {
    if (v === null || typeof v !== 'object') return v;
    if (Array.isArray(v)) return v.map(walk);
    const o = v as Record<string, unknown>;
    if (typeof o.$number === 'string') return o.$number === '-0' ? -0 : Number(o.$number);
    if (typeof o.$typed === 'number') {
      const s = sections[o.$typed];
      if (!s) throw new PackError(`reference to missing section ${o.$typed}`);
      const array = typedArrayAt(view, base + s.offset, s.byteLength, s.type, used.has(o.$typed));
      used.add(o.$typed);
      return array;
    }
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(o)) out[key] = walk(item);
    return out;
  };
  return walk(parsed.value);
}

function typedArrayAt(
  view: Buffer,
  at: number,
  byteLength: number,
  type: TypedArrayName,
  mustCopy: boolean,
): TypedArray {
  const ctor = TYPED[type];
  const size = ctor.BYTES_PER_ELEMENT;
  const start = view.byteOffset + at;
  if (LITTLE_ENDIAN && !mustCopy && start % size === 0)
    return new ctor(view.buffer as ArrayBuffer, start, byteLength / size);
  const copy = new Uint8Array(byteLength);
  copy.set(view.subarray(at, at + byteLength));
  if (!LITTLE_ENDIAN) swapBytes(copy, size);
  return new ctor(copy.buffer, 0, byteLength / size);
}

/** An array's elements as little-endian bytes: a view on little-endian machines, a copy otherwise. */
export function littleEndianBytes(array: TypedArray): Buffer {
  const bytes = Buffer.from(array.buffer, array.byteOffset, array.byteLength);
  if (LITTLE_ENDIAN || array.BYTES_PER_ELEMENT === 1) return bytes;
  const copy = Buffer.from(bytes);
  swapBytes(copy, array.BYTES_PER_ELEMENT);
  return copy;
}

function swapBytes(bytes: Uint8Array, size: number): void {
  for (let i = 0; i < bytes.length; i += size) bytes.subarray(i, i + size).reverse();
}

function isPlainObject(v: object): boolean {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

export function pad8(n: number): number {
  return (n + 7) & ~7;
}

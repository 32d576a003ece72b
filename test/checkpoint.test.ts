import * as nodeFs from 'node:fs';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import {
  type Checkpoint,
  checkpointFileName,
  decodeCheckpoint,
  encodeCheckpoint,
  listCheckpoints,
  loadLatestCheckpoint,
  readCheckpoint,
  writeCheckpoint,
} from '../src/pipeline/checkpointFile.js';
import { type AtomicFs, removeStaleTemps, writeFileAtomic } from '../src/util/atomicFile.js';
import { RxtrainError } from '../src/util/errors.js';
import { pack, packParts, TypedRuns, unpack } from '../src/util/packed.js';
import { tempDir } from './helpers/index.js';

function sampleCheckpoint(step: number, extra: Record<string, unknown> = {}): Checkpoint {
  const weights = new Float32Array(6).map((_, i) => step + i / 8);
  return {
    meta: {
      format: 2,
      rxtrainVersion: '0.0.0-test',
      configHash: 'c'.repeat(64),
      step,
      epoch: step / 100,
      samples: step * 4,
      reason: 'interval',
      final: false,
      time: '2026-01-01T00:00:00.000Z',
      eventsOffset: step * 10,
      eventsSeq: step,
      best: null,
    },
    model: {
      weights,
      architecture: { type: 'softmax', inputShape: [2], bias: true, hidden: [], classes: 2 },
      classes: 2,
      transform: { width: 2, scale: new Float32Array([0.5, 0.25]), shift: null, bias: true },
      results: [],
    },
    states: {
      sgd: { step, weights: weights.slice(), velocity: new Float32Array([1, -2, 3.5]), ...extra },
      shuffle: { position: { mode: 'permutation', epoch: 1, cursor: 7, rng: { s: [1, 2, 3, 4] } }, skip: 3 },
    },
  };
}

test('pack/unpack restores every typed array type, nested, with exact numbers', (t) => {
  const value = {
    f32: new Float32Array([1.5, -0, Number.NaN, Number.POSITIVE_INFINITY, 3.4e38]),
    f64: new Float64Array([Math.PI, -Number.MIN_VALUE]),
    i8: new Int8Array([-128, 127]),
    u8: new Uint8Array([0, 255, 7]),
    u8c: new Uint8ClampedArray([3]),
    i16: new Int16Array([-32768]),
    u16: new Uint16Array([65535]),
    i32: new Int32Array([-(2 ** 31), 5]),
    u32: new Uint32Array([2 ** 32 - 1]),
    b64: new BigInt64Array([-5n]),
    bu64: new BigUint64Array([2n ** 64n - 1n]),
    // a view into a larger buffer: only its own elements are stored
    view: new Float32Array([9, 8, 7, 6]).subarray(1, 3),
    nested: { list: [{ buffers: [new Int32Array([1, 2])] }], numbers: [-0, Number.NaN, -Infinity, 1e-300] },
    text: 'ok',
    flag: false,
    nothing: null,
  };
  const back = unpack(pack(value)) as typeof value;
  t.deepEqual(back, value);
  t.true(back.f32 instanceof Float32Array);
  t.true(Object.is(back.f32[1], -0));
  t.true(Object.is(back.nested.numbers[0], -0));
  t.true(Number.isNaN(back.nested.numbers[1]!));
  t.deepEqual(Array.from(back.view), [8, 7]);
  t.true(back.nested.list[0]!.buffers[0] instanceof Int32Array);
});

test('pack stores identical arrays once, and unpack gives each reference its own copy', (t) => {
  const big = new Float32Array(10_000).fill(0.25);
  const once = pack({ a: big }).byteLength;
  const twice = pack({ a: big, b: big.slice() });
  t.true(twice.byteLength < once + 100, `${twice.byteLength} vs ${once}`);
  const back = unpack(twice) as { a: Float32Array; b: Float32Array };
  back.a[0] = 99;
  t.is(back.b[0], 0.25);
});

test('a Node Buffer (what zlib hands out) is stored as the Uint8Array it is', (t) => {
  const back = unpack(pack({ data: Buffer.from([1, 2, 3, 255]).subarray(1) })) as { data: Uint8Array };
  t.is(back.data.constructor, Uint8Array);
  t.deepEqual(Array.from(back.data), [2, 3, 255]);
  class Odd extends Float32Array {}
  t.deepEqual(Array.from((unpack(pack({ v: Odd.from([0.5]) })) as { v: Float32Array }).v), [0.5]);
});

test('TypedRuns: runs from separate buffers pack as the one array they make, without joining them', (t) => {
  const a = Float32Array.of(1, 2, 3);
  const b = new Float32Array(new ArrayBuffer(64), 8, 2).fill(4);
  const parts = packParts({ v: new TypedRuns([a, b]) });
  t.true(
    parts.some((p) => p.buffer === a.buffer) && parts.some((p) => p.buffer === b.buffer),
    'the runs are written from where they are',
  );
  const back = unpack(Buffer.concat(parts)) as { v: Float32Array };
  t.is(back.v.constructor, Float32Array);
  t.deepEqual(Array.from(back.v), [1, 2, 3, 4, 4]);
  t.throws(() => new TypedRuns([a, Int32Array.of(1)]), { message: /one typed-array type/ });
});

test('pack refuses values it cannot restore, naming where they are', (t) => {
  t.throws(() => pack({ a: { b: new Map() } }), { message: /a\.b: a Map cannot be stored/ });
  t.throws(() => pack({ list: [1, undefined] }), { message: /list\[1\]: undefined/ });
  t.throws(() => pack({ f: () => 1 }), { message: /f: a function/ });
  t.throws(() => pack({ x: { $typed: 1 } }), { message: /reserved key/ });
});

test('a checkpoint round-trips: typed arrays in stage states come back as typed arrays', (t) => {
  const cp = sampleCheckpoint(300);
  const back = decodeCheckpoint(encodeCheckpoint(cp), 'x.rxckpt');
  t.deepEqual(back.meta, cp.meta);
  t.deepEqual(back.states, cp.states);
  const sgd = back.states['sgd'] as { velocity: Float32Array; weights: Float32Array };
  t.true(sgd.velocity instanceof Float32Array);
  t.deepEqual(Array.from(sgd.velocity), [1, -2, 3.5]);
  t.deepEqual(back.model.weights, cp.model.weights);
  t.true(back.model.transform.scale instanceof Float32Array);
});

test('every single-bit flip and every truncation of a checkpoint is detected', (t) => {
  const bytes = encodeCheckpoint(sampleCheckpoint(300));
  let detected = 0;
  let tried = 0;
  for (let i = 0; i < bytes.byteLength; i += 7) {
    const bad = Buffer.from(bytes);
    bad[i]! ^= 1 << (i % 8);
    tried++;
    try {
      decodeCheckpoint(bad, 'x');
    } catch (error) {
      if (error instanceof RxtrainError && error.code === 'E_CHECKPOINT') detected++;
    }
  }
  t.is(detected, tried);
  for (const length of [0, 7, 12, 40, bytes.byteLength >> 1, bytes.byteLength - 1]) {
    const error = t.throws(() => decodeCheckpoint(bytes.subarray(0, length), 'cut.rxckpt'));
    t.regex(error!.message, /^cut\.rxckpt: (truncated|checksum mismatch|not an rxtrain)/);
  }
});

test('a checkpoint written before the model was a setting (rows × classes) reads as softmax regression', (t) => {
  const cp = sampleCheckpoint(5);
  const { architecture: _, ...model } = cp.model;
  const old = { ...cp, model: { ...model, rows: 3 } } as unknown as typeof cp;
  const back = decodeCheckpoint(encodeCheckpoint(old), 'old.rxckpt');
  t.deepEqual(back.model.architecture, cp.model.architecture);
  t.false('rows' in back.model);
  const wrong = { ...cp, model: { ...cp.model, weights: new Float32Array(5) } };
  t.throws(() => decodeCheckpoint(encodeCheckpoint(wrong), 'w.rxckpt'), {
    message: /expected 6 weights, found 5/,
  });
});

test('an older checkpoint format is named, not misread', (t) => {
  const bytes = encodeCheckpoint(sampleCheckpoint(1));
  bytes.write('RXCKPT01', 0);
  t.throws(() => decodeCheckpoint(bytes, 'old'), { message: /format 01 is not supported/ });
});

test('writeCheckpoint keeps the newest K plus the protected best; loadLatest falls back past bad files', (t) => {
  const dir = tempDir();
  for (const step of [100, 200, 300, 400, 500]) {
    writeCheckpoint(dir, sampleCheckpoint(step), {
      keep: 2,
      protect: new Set([checkpointFileName(200)]),
    });
  }
  t.deepEqual(listCheckpoints(dir), [
    checkpointFileName(500),
    checkpointFileName(400),
    checkpointFileName(200),
  ]);
  // Corrupt the newest (bit flip) and truncate the next: the one after is used, both reported.
  const newest = join(dir, checkpointFileName(500));
  const bytes = readFileSync(newest);
  bytes[100]! ^= 0x10;
  writeFileSync(newest, bytes);
  const second = join(dir, checkpointFileName(400));
  const secondBytes = readFileSync(second);
  writeFileSync(second, secondBytes.subarray(0, secondBytes.byteLength >> 1));
  const { checkpoint, invalid } = loadLatestCheckpoint(dir);
  t.is(checkpoint?.meta.step, 200);
  t.deepEqual(
    invalid.map((i) => [i.file, i.error.code]),
    [
      [newest, 'E_CHECKPOINT'],
      [second, 'E_CHECKPOINT'],
    ],
  );
  t.regex(invalid[0]!.error.message, /checksum mismatch/);
  t.deepEqual(loadLatestCheckpoint(tempDir()), { checkpoint: undefined, invalid: [] });
});

/** A file system that fills up after `room` more bytes, like a small tmpfs. */
function fullDiskAfter(room: number): AtomicFs & { temps: string[] } {
  const temps: string[] = [];
  return {
    temps,
    ...nodeFs,
    openSync: (path, flags) => {
      temps.push(path);
      return nodeFs.openSync(path, flags);
    },
    writeSync: (fd, buffer, offset, length) => {
      const n = Math.min(length, room);
      room -= n;
      if (n === 0)
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      return nodeFs.writeSync(fd, buffer, offset, n);
    },
  };
}

test('a full disk while saving: a clear E_IO error, no temp file, the previous checkpoints intact', (t) => {
  const dir = tempDir();
  writeCheckpoint(dir, sampleCheckpoint(100), { keep: 1 });
  const before = readFileSync(join(dir, checkpointFileName(100)));
  const fs = fullDiskAfter(500);
  const error = t.throws(() => writeCheckpoint(dir, sampleCheckpoint(200), { keep: 1, fs }), {
    instanceOf: RxtrainError,
  });
  t.is(error!.code, 'E_IO');
  t.is(
    error!.message,
    `${join(dir, checkpointFileName(200))}: cannot write (ENOSPC: no space left on device)`,
  );
  t.is(fs.temps.length, 1);
  t.false(existsSync(fs.temps[0]!), 'the half-written temp file is removed');
  t.deepEqual(readdirSync(dir), [checkpointFileName(100)], 'rotation did not run');
  t.deepEqual(readFileSync(join(dir, checkpointFileName(100))), before);
  t.is(readCheckpoint(join(dir, checkpointFileName(100))).meta.step, 100);
});

test('writeFileAtomic never leaves a half-written target, and a dead writer’s temp files are cleaned', (t) => {
  const dir = tempDir();
  const target = join(dir, 'data.bin');
  writeFileAtomic(target, 'old');
  t.throws(() => writeFileAtomic(target, Buffer.alloc(4096, 1), { fs: fullDiskAfter(1000) }), {
    message: /ENOSPC: no space left on device/,
  });
  t.is(readFileSync(target, 'utf8'), 'old');
  // pid 2^22+1 is above Linux's pid_max default and so not running; ours is.
  writeFileSync(join(dir, `.data.bin.${2 ** 22 + 1}.0.tmp`), 'torn');
  writeFileSync(join(dir, `.data.bin.${process.pid}.9.tmp`), 'in progress');
  t.deepEqual(removeStaleTemps(dir), [`.data.bin.${2 ** 22 + 1}.0.tmp`]);
  t.deepEqual(readdirSync(dir).sort(), [`.data.bin.${process.pid}.9.tmp`, 'data.bin']);
});

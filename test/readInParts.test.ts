import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { crc32 } from '../src/util/crc32.js';
import { readInParts } from '../src/util/readInParts.js';

const dir = mkdtempSync(join(tmpdir(), 'rx-readparts-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const bytes = Uint8Array.from({ length: 100_003 }, (_, i) => (i * 7919 + (i >> 9)) % 253);
const path = join(dir, 'data.bin');
writeFileSync(path, bytes);

test('parts arrive in file order and fill the buffer exactly, whatever the part size', async (t) => {
  for (const partBytes of [1, 4096, 10_000, 33_334, 100_003, 1 << 20]) {
    const fd = openSync(path, 'r');
    try {
      const into = new Uint8Array(bytes.length - 3);
      const offsets: number[] = [];
      let crc = 0;
      await readInParts(fd, into, 3, into.length, {
        partBytes,
        concurrency: partBytes % 2 ? 1 : 3,
        onPart: (part, offset) => {
          offsets.push(offset);
          crc = crc32(part, crc);
        },
      });
      t.deepEqual(Buffer.from(into), Buffer.from(bytes.subarray(3)), `parts of ${partBytes}`);
      t.is(crc, crc32(bytes.subarray(3)), `the CRC over the parts in order (parts of ${partBytes})`);
      t.deepEqual(
        offsets,
        Array.from({ length: Math.ceil(into.length / partBytes) }, (_, i) => i * partBytes),
      );
    } finally {
      closeSync(fd);
    }
  }
});

test('a file shorter than asked rejects, naming the byte where it ended', async (t) => {
  const fd = openSync(path, 'r');
  try {
    const into = new Uint8Array(bytes.length + 10);
    const error = await t.throwsAsync(readInParts(fd, into, 0, into.length, { partBytes: 40_000 }));
    t.regex(error!.message, /ended at byte 100003/);
  } finally {
    closeSync(fd);
  }
});

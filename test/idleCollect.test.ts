/**
 * The collection rxtrain asks for as a large read starts (util/idleCollect.ts): one at a time, on
 * the next turn of the event loop, only where the process was started with `--expose-gc`, and
 * only for a block large enough for V8 to collect for anyway.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { fromFileBlocks } from '../src/flow/fileBlocks.js';
import { COLLECT_AT_BYTES, collectWhileReading } from '../src/util/idleCollect.js';
import { collect, tempDir } from './helpers/index.js';

const holder = globalThis as { gc?: () => void };

/** Run `body` with a stand-in for V8's `gc`, counting the collections asked for. */
async function counting(body: () => Promise<void> | void): Promise<number> {
  const saved = holder.gc;
  let calls = 0;
  holder.gc = () => {
    calls++;
  };
  try {
    await body();
    await new Promise((resolve) => setImmediate(resolve));
    return calls;
  } finally {
    holder.gc = saved;
  }
}

test.serial('without --expose-gc nothing happens; with it, one collection however often asked', async (t) => {
  const saved = holder.gc;
  holder.gc = undefined;
  t.notThrows(() => collectWhileReading());
  holder.gc = saved;
  t.is(
    await counting(() => {
      collectWhileReading();
      collectWhileReading();
      collectWhileReading();
    }),
    1,
  );
});

test.serial('a block of a large file asks for one collection; a small file for none', async (t) => {
  const dir = tempDir();
  const large = join(dir, 'large');
  const small = join(dir, 'small');
  writeFileSync(large, new Uint8Array(COLLECT_AT_BYTES + 1));
  writeFileSync(small, new Uint8Array(1 << 20));
  const read = (path: string) => async () => {
    const chunks = await collect(fromFileBlocks(path, { blockBytes: 64 << 20, chunkBytes: 1 << 20 }));
    t.is(
      chunks.reduce((n, c) => n + c.byteLength, 0),
      path === large ? COLLECT_AT_BYTES + 1 : 1 << 20,
    );
  };
  t.is(await counting(read(large)), 1);
  t.is(await counting(read(small)), 0);
});

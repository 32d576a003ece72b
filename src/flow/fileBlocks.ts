/**
 * `fromFileBlocks`: a local file as chunks that are views into a few large blocks.
 *
 * Each block is read whole, up to `blockBytes` (the whole file, for MNIST's 47 MB images; in 8 MiB
 * parts on the thread pool at once), and its chunks are consecutive views of it: a decoder that
 * meets a record split between two chunks of one block can take it as a view, and the records of
 * a block end up contiguous in memory, so the store that keeps them can hold the block itself
 * instead of a copy. Reading 47 MB in 256 KiB pieces costs ~180 thread-pool round trips and as
 * many fresh buffers to fault in; whole blocks cost what the bytes cost. The next block is read
 * only when the last chunk of the previous one has been asked for (demand still reaches the
 * file), and a block is never written after its chunks are out: they are plain immutable data for
 * whoever holds them. The end is where fstat says, asked again there (a file that grew meanwhile
 * is read on); a file that gets shorter while it is read is an error naming it.
 */
import { close, fstat, fstatSync, open } from 'node:fs';
import { Observable } from 'rxjs/internal/Observable';
import { RxtrainError } from '../util/errors.js';
import { COLLECT_AT_BYTES, collectWhileReading } from '../util/idleCollect.js';
import { readInParts } from '../util/readInParts.js';
import { type Flow, Outlet } from './protocol.js';

export interface FileBlockOptions {
  /** Bytes per read (the most a block holds). */
  blockBytes: number;
  /** Bytes per emitted chunk (a view of its block). */
  chunkBytes: number;
  /** Told of each block as it is read (a digest of the file on the way). */
  onBlock?: (block: Uint8Array) => void;
  /** Told when the whole file has been read. */
  onEnd?: () => void;
}

export function fromFileBlocks(path: string, options: FileBlockOptions): Flow<Uint8Array> {
  return (requests) =>
    new Observable<Uint8Array>((subscriber) => {
      let fd: number | undefined;
      let size = 0;
      let position = 0;
      let block: Uint8Array | undefined;
      let cursor = 0;
      let reading = false;
      let done = false;
      let closed = false;
      const fail = (error: unknown) => {
        if (subscriber.closed) return;
        if (error instanceof RxtrainError) return subscriber.error(error);
        const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
        subscriber.error(new RxtrainError('E_IO', `${path}: cannot read (${code})`, { cause: error }));
      };
      /** The block at `position` is in: hand it out, or, when it is empty, end. */
      const arrived = (target: Buffer, filled: number) => {
        reading = false;
        if (closed) {
          // Torn down while the read was in flight: the descriptor was left open for it.
          close(fd!, () => {});
          return;
        }
        position += filled;
        if (filled === 0) {
          done = true;
          options.onEnd?.();
        } else {
          // A plain Uint8Array (not a Buffer): what every other stage sends as bytes.
          block = new Uint8Array(target.buffer, target.byteOffset, filled);
          cursor = 0;
          options.onBlock?.(block);
        }
        outlet.drain();
      };
      const readBlock = () => {
        reading = true;
        if (position >= size) {
          // At the size fstat gave: the end, unless the file has grown since (no read to learn it).
          try {
            size = fstatSync(fd!).size;
          } catch (error) {
            reading = false;
            return fail(error);
          }
          if (position >= size) return arrived(Buffer.alloc(0), 0);
        }
        const want = Math.min(options.blockBytes, size - position);
        const target = Buffer.allocUnsafeSlow(want);
        // V8 will collect for it: better now, while the block is read (util/idleCollect.ts).
        if (want >= COLLECT_AT_BYTES) collectWhileReading();
        // Large blocks in parts on several of libuv's threads at once: reading into fresh memory
        // costs its page faults, which then share the cores (util/readInParts.ts).
        readInParts(fd!, target, position, want).then(
          () => arrived(target, want),
          (error: unknown) => {
            reading = false;
            if (closed) return close(fd!, () => {});
            if (error instanceof RangeError)
              return fail(
                new RxtrainError(
                  'E_IO',
                  `${path}: the file got shorter while it was read (${error.message})`,
                ),
              );
            fail(error);
          },
        );
      };
      const outlet = new Outlet<Uint8Array>(subscriber, () => {
        while (outlet.wanted > 0 && !subscriber.closed) {
          if (block && cursor < block.byteLength) {
            const end = Math.min(cursor + options.chunkBytes, block.byteLength);
            const chunk = block.subarray(cursor, end);
            cursor = end;
            outlet.push(chunk);
            continue;
          }
          if (done) {
            subscriber.complete();
            return;
          }
          if (!reading && fd !== undefined) readBlock();
          return;
        }
      });
      open(path, 'r', (error, opened) => {
        if (error) return fail(error);
        if (closed) return close(opened, () => {});
        fd = opened;
        fstat(opened, (statError, st) => {
          if (closed) return;
          if (statError) return fail(statError);
          size = st.size;
          outlet.drain();
        });
      });
      const sub = requests.subscribe((n) => outlet.add(n));
      return () => {
        closed = true;
        sub.unsubscribe();
        // Never close under a read in flight: its callback closes instead.
        if (fd !== undefined && !reading) close(fd, () => {});
      };
    });
}

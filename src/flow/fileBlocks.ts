/**
 * `fromFileBlocks`: a local file as chunks that are views into a few large blocks.
 *
 * Each block is one `read` of up to `blockBytes` (the whole file, for MNIST's 47 MB images), and
 * its chunks are consecutive views of it: a decoder that meets a record split between two chunks
 * of one block can take it as a view, and the records of a block end up contiguous in memory, so
 * the store that keeps them can hold the block itself instead of a copy. Reading 47 MB in 256 KiB
 * pieces costs ~180 thread-pool round trips and as many fresh buffers to fault in; one read costs
 * what the bytes cost. The next block is read only when the last chunk of the previous one has
 * been asked for (demand still reaches the file), and a block is never written after its chunks
 * are out: they are plain immutable data for whoever holds them.
 */
import { close, fstat, open, read } from 'node:fs';
import { Observable } from 'rxjs/internal/Observable';
import { RxtrainError } from '../util/errors.js';
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
        const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
        if (!subscriber.closed)
          subscriber.error(new RxtrainError('E_IO', `${path}: cannot read (${code})`, { cause: error }));
      };
      const readBlock = () => {
        reading = true;
        // Past the size fstat gave, a small read finds the end (or bytes appended since).
        const want = position < size ? Math.min(options.blockBytes, size - position) : 65536;
        const target = Buffer.allocUnsafeSlow(want);
        let filled = 0;
        const more = () =>
          read(fd!, target, filled, want - filled, position + filled, (error, n) => {
            if (closed) {
              // Torn down while this read was in flight: the descriptor was left open for it.
              reading = false;
              close(fd!, () => {});
              return;
            }
            if (error) return fail(error);
            filled += n;
            if (n > 0 && filled < want) return more();
            reading = false;
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
          });
        more();
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

/**
 * A full garbage collection now, while the main thread would only wait: `collectWhileReading()`
 * is called as a large read of a file starts on the thread pool.
 *
 * Allocating a large block of data raises what V8 counts as external memory, and V8 answers with a
 * mark-compact of its heap at its next chance: as the data ends and training begins, where its
 * pause (6-10 ms here, ~7 MB of heap) holds up the first evaluation. Collected while the block is
 * being read into, the same collection costs the run nothing, and V8 then sees no reason for
 * another: the default experiment's collections took 18-24 ms instead of 33-45, and its wall
 * −8 to −24 ms a rerun (three sets of 14-16 alternating pairs) and −8 ms a first run.
 *
 * V8 offers a collection on demand only to a process started with `--expose-gc`, which
 * `bin/rxtrain.js` sets on its first line; anywhere else (a library user's process, the tests) this
 * does nothing. One collection waits at a time.
 */

/** The smallest block worth a collection: the external memory V8 reacts to grows by tens of MB. */
export const COLLECT_AT_BYTES = 16 << 20;

let pending = false;

export function collectWhileReading(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc !== 'function' || pending) return;
  pending = true;
  setImmediate(() => {
    pending = false;
    gc();
  });
}

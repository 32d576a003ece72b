/**
 * Milliseconds on a monotonic clock, from an arbitrary origin: what `performance.now()` gives,
 * without it. Node 20 loads perf_hooks (ten internal modules, ~3 ms of a command's start on the
 * machines rxtrain is measured on) the first time anything touches the `performance` global.
 */
export function monotonicMs(): number {
  const [seconds, nanoseconds] = process.hrtime();
  return seconds * 1e3 + nanoseconds / 1e6;
}

#!/usr/bin/env -S -u NODE_EXTRA_CA_CERTS RXTRAIN_DEFERRED_CA_CERTS=${NODE_EXTRA_CA_CERTS} GLIBC_TUNABLES=${GLIBC_TUNABLES}:glibc.malloc.hugetlb=1 node --max-semi-space-size=1 --v8-pool-size=1 --expose-gc
// The rxtrain command: signals become an AbortSignal the run turns into a checkpoint and exit
// 129 (SIGHUP: the terminal closed), 130 (SIGINT) or 143 (SIGTERM); a second signal exits at once,
// saying what it skipped.
//
// The first line sets what only a process's start can set, run as a command (`npx rxtrain`,
// `rxtrain` on the PATH, `./bin/rxtrain.js`, `npm start`):
// - `glibc.malloc.hugetlb=1` (appended to any GLIBC_TUNABLES of yours): malloc asks for
//   transparent huge pages for its large blocks, which hold the data. On a VM whose kernel gives
//   them only when asked (`madvise`), touching 55 MB of fresh 4 KiB pages costs ~150 ms; in
//   2 MiB pages, 10-60 ms (measured on the 2-core machines rxtrain is benchmarked on). glibc reads
//   the setting only as it starts; other C libraries ignore it.
// - `--max-semi-space-size=1`: V8's young generation stays at 1 MB per semi-space instead of
//   growing to 16, which this workload of few, large typed arrays never needs (~10 MB of peak
//   RSS); V8 reads it only as the process starts (v8.setFlagsFromString afterwards leaves the young
//   generation at its default size, measured).
// - `--v8-pool-size=1`: one V8 helper thread (concurrent GC, optimising compiles) instead of four.
//   On the 2-core machines rxtrain is measured on, four helpers and libuv's four file readers
//   outnumber the cores during a run's data phase, and a GC pause that waits for a helper waits
//   for a core: the default experiment ran 15-25 ms faster with 3-4 MB less peak RSS (medians of
//   12, alternating).
// - `--expose-gc`: a full collection can be asked for, which rxtrain does once as a large read
//   of data starts, so that V8's own, which that block's external memory calls for, comes while
//   the main thread waits for the read instead of as training begins (src/util/idleCollect.ts).
// - NODE_EXTRA_CA_CERTS is put off: Node 20 parses every certificate in it as it starts (35-40 ms
//   for a system bundle on those machines, about half of Node's own start), although most commands
//   never open a TLS connection. Its value comes in as RXTRAIN_DEFERRED_CA_CERTS; below it goes
//   back into the environment of every process rxtrain starts, and rxtrain's downloads and Redis
//   connections read the file when they first need it (src/util/caCertificates.ts).
// `node bin/rxtrain.js` skips the line: give the flags yourself there (NODE_EXTRA_CA_CERTS then
// loads at start, as usual).
//
// This file is CommonJS (bin/package.json), not an ES module like the rest of the package: an ES
// module entry costs Node ~11 ms more to start (its module loader), and `run`/`resume` need none.
'use strict';
const { statSync } = require('node:fs');
const { join } = require('node:path');
const { pathToFileURL } = require('node:url');

const deferredCa = process.env.RXTRAIN_DEFERRED_CA_CERTS;
if (deferredCa !== undefined) {
  delete process.env.RXTRAIN_DEFERRED_CA_CERTS;
  if (deferredCa) process.env.NODE_EXTRA_CA_CERTS = deferredCa;
  globalThis[Symbol.for('rxtrain.deferredCaCerts')] = deferredCa;
}

const BUNDLE = join(__dirname, '../dist/bundle/cli');
const MODULES = join(__dirname, '../dist/src');

/**
 * Whether to run the esbuild bundle (`npm run build`): when it is at least as new as what tsc last
 * wrote, so that a `tsc` alone never runs a stale bundle.
 */
function bundled() {
  try {
    return (
      process.env.RXTRAIN_BUNDLE !== '0' &&
      statSync(join(BUNDLE, 'cli.js')).mtimeMs >= statSync(join(MODULES, 'cli.js')).mtimeMs
    );
  } catch {
    return false; // No bundle (or no build at all: the import below says so).
  }
}

/**
 * `run` and `resume` from the bundle's CommonJS file, through a V8 code cache kept beside it
 * (src/cli/cachedScript.ts, bundled as loader.cjs): a run skips parsing and compiling its ~1 MB of
 * code. Undefined when that cannot be done here; the ES modules serve then, as they serve every
 * other command.
 */
function cachedRunEntry() {
  try {
    const { loadCached } = require(join(BUNDLE, 'loader.cjs'));
    // The script's own import() has no loader: it borrows this file's (src/util/importModule.ts).
    globalThis[Symbol.for('rxtrain.import')] = (url) => import(url);
    // zod is not in run.cjs: it is lent when something first validates (src/util/zod.ts), from a
    // file of its own with a code cache of its own, so that a run which validates nothing (its
    // config remembered) neither reads zod nor deserialises it.
    globalThis[Symbol.for('rxtrain.zod')] = () => {
      const zod = join(BUNDLE, 'zod.cjs');
      zodScript = loadCached(zod, `${zod}.v8cache`);
      return zodScript.exports;
    };
    const file = join(BUNDLE, 'run.cjs');
    return loadCached(file, `${file}.v8cache`);
  } catch {
    return undefined;
  }
}

/** zod's cached script, once lent (`cachedRunEntry`). */
let zodScript;

async function start() {
  const useBundle = bundled();
  const cached = useBundle && ['run', 'resume'].includes(process.argv[2]) ? cachedRunEntry() : undefined;
  let cli = cached?.exports;
  try {
    cli ??= await import(pathToFileURL(join(useBundle ? BUNDLE : MODULES, 'cli.js')).href);
  } catch (error) {
    if (error && error.code === 'ERR_MODULE_NOT_FOUND') {
      process.stderr.write(
        'rxtrain: not built yet; run `npm ci` (or `npm run build`) in the rxtrain directory\n',
      );
      process.exit(1);
    }
    throw error;
  }

  const EXIT_CODES = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 };
  const controller = new AbortController();
  let signals = 0;
  for (const signal of Object.keys(EXIT_CODES)) {
    process.on(signal, () => {
      signals++;
      if (signals > 1) {
        try {
          process.stderr.write(
            `rxtrain: ${signal} again: exiting at once, without the checkpoint and summary the first ${controller.signal.reason} was writing; rxtrain resume continues from the last checkpoint\n`,
          );
        } catch {
          // The terminal may be gone (SIGHUP).
        }
        process.exit(EXIT_CODES[signal]);
      }
      controller.abort(signal);
    });
  }

  const code = await cli.main(process.argv.slice(2), {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    stderrIsTty: Boolean(process.stderr.isTTY),
    stdoutIsTty: Boolean(process.stdout.isTTY),
    stderrColumns: () => process.stderr.columns,
    env: process.env,
    signal: controller.signal,
  });
  // A first start, a new Node or a rebuilt bundle leaves a code cache for the next run.
  cached?.save();
  zodScript?.save();
  // Exit once both streams are flushed, even if a library left a socket or timer open.
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}

start();

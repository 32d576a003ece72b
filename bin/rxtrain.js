#!/usr/bin/env node
// The rxtrain command: signals become an AbortSignal the run turns into a checkpoint and exit
// 129 (SIGHUP: the terminal closed), 130 (SIGINT) or 143 (SIGTERM); a second signal exits at once,
// saying what it skipped.
let cli;
try {
  cli = await import('../dist/src/cli.js');
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
// Exit once both streams are flushed, even if a library left a socket or timer open.
process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));

/**
 * `npm run build`'s second step: the CLI and the library bundled by esbuild into
 * dist/bundle/cli/, one entry per command (each command's code is still loaded only when it runs)
 * and shared chunks between them. Loading `rxtrain run` from ~215 modules (95 of them zod's) cost
 * about 0.25 s of CPU on the development machine and 10 MB; from the bundle, a handful of files.
 *
 * bin/rxtrain.js uses the bundle only when it is at least as new as dist/src/cli.js, so a `tsc`
 * without this step never runs stale code. The bundle keeps class and function names (error
 * classes are told apart by name across copies: util/errors.ts). Without esbuild (an install
 * without dev dependencies) this step says so and does nothing: the CLI runs from dist/src.
 */
import { rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** `node dist/scripts/bundle.js [DIR]`: DIR (relative to the repository) instead, for tests. */
const OUT = join(ROOT, process.argv[2] ?? 'dist/bundle/cli');

let esbuild: typeof import('esbuild');
try {
  esbuild = await import('esbuild');
} catch {
  process.stderr.write('bundle: esbuild is not installed; the CLI will run from dist/src\n');
  process.exit(0);
}

rmSync(OUT, { recursive: true, force: true });
const result = await esbuild.build({
  // cli.js last: bin/rxtrain.js compares its time with dist/src/cli.js.
  entryPoints: { index: join(ROOT, 'dist/src/index.js'), cli: join(ROOT, 'dist/src/cli.js') },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  outdir: OUT,
  keepNames: true,
  // Whitespace and syntax only: names stay, for stack traces and the error classes (util/errors.ts).
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: 'linked',
  metafile: true,
  logLevel: 'warning',
  // CommonJS dependencies (tar-stream, picomatch, pngjs) call require() for Node's own modules.
  banner: {
    js: "import { createRequire as __rxtrainRequire } from 'node:module'; const require = __rxtrainRequire(import.meta.url);",
  },
});
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
process.stderr.write(
  `bundle: ${Object.keys(result.metafile.outputs).filter((f) => f.endsWith('.js')).length} files, ${(bytes / 1e6).toFixed(1)} MB in ${OUT}\n`,
);

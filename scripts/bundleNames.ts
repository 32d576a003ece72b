/**
 * The bundle is built without esbuild's `keepNames` (scripts/bundle.ts). Where two modules declare
 * a class of the same name, esbuild renames one (`X` → `X2`), and without `keepNames` that class
 * answers `X2` to `.name`. rxtrain tells its error classes apart by name (src/util/errors.ts: an
 * error thrown by one copy of rxtrain must be an instance of the other's class), so the build fails
 * when one of them has been renamed.
 */

/** The RxtrainError classes (and RxtrainError itself) that esbuild renamed in a bundled file. */
export function renamedErrorClasses(text: string): string[] {
  const parent = new Map<string, string>();
  for (const m of text.matchAll(/\b(?:class ([\w$]+)|([\w$]+)=class) extends ([\w$]+)/g))
    parent.set(m[1] ?? m[2]!, m[3]!);
  const isRxtrainError = (name: string, depth = 0): boolean =>
    /^RxtrainError\d*$/.test(name) ||
    (depth < 32 && parent.has(name) && isRxtrainError(parent.get(name)!, depth + 1));
  return [...parent.keys()].filter((name) => /\D\d+$/.test(name) && isRxtrainError(name));
}

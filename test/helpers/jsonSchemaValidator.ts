/**
 * A maintained JSON Schema validator (ajv) for the schema tests, loaded without a static import:
 * the package's own copy when it is installed, else one installed beside the checkout for
 * development (`npm install --prefix /tmp/serve-deps ajv`). Undefined when neither is there, and
 * the tests that need it say so in their titles.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

export interface Validate {
  (data: unknown): boolean;
  errors?: { instancePath: string; message?: string; keyword: string; params: unknown }[] | null;
}

export interface Validator {
  compile(schema: object): Validate;
}

const FALLBACK = '/tmp/serve-deps/node_modules/ajv';

export async function jsonSchemaValidator(): Promise<Validator | undefined> {
  const name = 'ajv';
  let mod: { default?: unknown } | undefined;
  try {
    mod = (await import(name)) as { default?: unknown };
  } catch {
    if (!existsSync(FALLBACK)) return undefined;
    mod = { default: createRequire(import.meta.url)(FALLBACK) };
  }
  // ajv is CommonJS: its class is the export, or the export's `default`.
  let Ajv = mod.default as { default?: unknown } | undefined;
  if (Ajv && typeof Ajv !== 'function') Ajv = Ajv.default as typeof Ajv;
  if (typeof Ajv !== 'function') return undefined;
  // Strict, but for strictRequired (`if: {required: [size]}` is plain JSON Schema) and union types (`type: [number, string]`).
  return new (Ajv as unknown as new (o: object) => Validator)({
    allErrors: true,
    strict: true,
    strictRequired: false,
    allowUnionTypes: true,
  });
}

/**
 * Regenerate the JSON Schemas the shipped configs name in their first line (`npm run schema`):
 * schema/experiment.schema.json for config/*.yaml (the built-in stages), and
 * schema/examples.schema.json for examples/*.yaml (with the examples' user stages). A test fails
 * when a committed schema and the stages' schemas disagree.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { schemaText } from '../src/cli/schema.js';

export const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '../..');

/** Each committed schema, the config whose user modules it includes, and the configs that name it. */
export const SHIPPED_SCHEMAS = [
  { file: 'schema/experiment.schema.json', config: undefined, for: 'config' },
  { file: 'schema/examples.schema.json', config: 'examples/mnist-running-count.yaml', for: 'examples' },
] as const;

export async function generatedSchema(entry: (typeof SHIPPED_SCHEMAS)[number]): Promise<string> {
  return (await schemaText(entry.config && join(ROOT, entry.config))).text;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const entry of SHIPPED_SCHEMAS) {
    const file = join(ROOT, entry.file);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, await generatedSchema(entry));
    console.log(`updated ${file}`);
  }
}

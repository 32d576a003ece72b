/**
 * Regenerate the JSON Schemas the shipped configs name in their first line (`npm run schema`):
 * schema/experiment.schema.json for config/*.yaml (the built-in stages), and
 * schema/examples.schema.json for examples/*.yaml (with the examples' user stages); and the event
 * format's schema/events.schema.json (docs/events.md), and sweep files' schema/sweep.schema.json. A test fails when a committed schema and
 * the zod schemas it comes from disagree.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { schemaText } from '../src/cli/schema.js';
import { EVENTS_VERSION, eventSchema } from '../src/pipeline/eventSchema.js';
import { sweepSchema } from '../src/sweep/sweepSchema.js';

export const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '../..');

/** Each committed schema, the config whose user modules it includes, and the configs that name it. */
export const SHIPPED_SCHEMAS = [
  { file: 'schema/experiment.schema.json', config: undefined, for: 'config' },
  {
    file: 'schema/examples.schema.json',
    config: ['examples/mnist-running-count.yaml', 'examples/mnist-cutout.yaml'],
    for: 'examples',
  },
] as const;

export async function generatedSchema(entry: (typeof SHIPPED_SCHEMAS)[number]): Promise<string> {
  return (await schemaText(entry.config?.map((c) => join(ROOT, c)))).text;
}

/** The JSON Schema of one line of events.ndjson, from src/pipeline/eventSchema.ts. */
export function eventsJsonSchema(): string {
  const json = z.toJSONSchema(eventSchema, { io: 'input', target: 'draft-7' }) as Record<string, unknown>;
  return `${JSON.stringify(
    {
      $schema: json.$schema,
      title: `rxtrain event, format version ${EVENTS_VERSION}`,
      description: 'One line of a run directory’s events.ndjson (docs/events.md)',
      ...Object.fromEntries(Object.entries(json).filter(([k]) => k !== '$schema')),
    },
    null,
    2,
  )}\n`;
}

export const EVENTS_SCHEMA = 'schema/events.schema.json';

/** The JSON Schema of sweep files (docs/sweeps.md), from src/sweep/sweepSchema.ts. */
export function sweepJsonSchema(): string {
  const json = z.toJSONSchema(sweepSchema, { io: 'input', target: 'draft-7' }) as Record<string, unknown>;
  return `${JSON.stringify(
    {
      $schema: json.$schema,
      title: 'rxtrain sweep file',
      description: 'A sweep: a base experiment, its search space and how trials are ranked (docs/sweeps.md)',
      ...Object.fromEntries(Object.entries(json).filter(([k]) => k !== '$schema')),
    },
    null,
    2,
  )}\n`;
}

export const SWEEP_SCHEMA = 'schema/sweep.schema.json';

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const entry of SHIPPED_SCHEMAS) {
    const file = join(ROOT, entry.file);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, await generatedSchema(entry));
    console.log(`updated ${file}`);
  }
  writeFileSync(join(ROOT, EVENTS_SCHEMA), eventsJsonSchema());
  console.log(`updated ${join(ROOT, EVENTS_SCHEMA)}`);
  writeFileSync(join(ROOT, SWEEP_SCHEMA), sweepJsonSchema());
  console.log(`updated ${join(ROOT, SWEEP_SCHEMA)}`);
}

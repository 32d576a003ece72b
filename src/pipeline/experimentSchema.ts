/**
 * The shape of an experiment file's top level (edge capacity, checkpoint policy, the stage list),
 * and the validated, resolved form that loading a config produces.
 */

import type { EdgeCapacity } from '../flow/index.js';
import { built, lazySchema } from '../util/lazySchema.js';
import type { CheckpointPolicy } from './checkpoints.js';
import { jsonIf } from './jsonRule.js';
import type { StageDefinition } from './stage.js';

export const capacitySchema = lazySchema((z) =>
  z
    .strictObject({
      // An edge holds blocks or chunks of up to a few MB each: thousands already exceed any memory.
      items: z
        .int()
        .min(1)
        .max(4096)
        .default(8)
        .describe('most items buffered between this stage and the next'),
      bytes: z
        .int()
        .min(1)
        .max(4 * 2 ** 30)
        .optional()
        .describe('most bytes buffered (chunks, decoded examples; at most 4 GiB)'),
    })
    .describe('capacity of the edge after this stage'),
);

export const checkpointSchema = lazySchema((z) =>
  z
    .strictObject({
      every: z.int().min(0).default(0).describe('checkpoint every N steps (0: off)'),
      everySeconds: z.number().min(0).default(0).describe('checkpoint every T seconds (0: off)'),
      keep: z.int().min(1).default(3).describe('how many recent checkpoints to keep'),
      keepBest: z
        .string()
        .regex(/^[a-z]+\.(accuracy|loss)$/, 'expected <split>.accuracy or <split>.loss, e.g. val.accuracy')
        .nullable()
        .default(null)
        .describe('also keep the best checkpoint by this evaluation metric'),
      onSignal: z.boolean().default(true).describe('checkpoint and stop on SIGHUP/SIGINT/SIGTERM'),
      atEnd: z.boolean().default(true).describe('checkpoint the final model'),
    })
    // wiring.ts's rule that keepBest needs checkpoints to choose from, said in JSON Schema for editors.
    .meta(
      jsonIf(
        { properties: { keepBest: { type: 'string' } }, required: ['keepBest'] },
        {
          anyOf: [
            { properties: { every: { type: 'integer', minimum: 1 } }, required: ['every'] },
            {
              properties: { everySeconds: { type: 'number', exclusiveMinimum: 0 } },
              required: ['everySeconds'],
            },
          ],
        },
      ),
    )
    .describe('when to write checkpoints'),
);

/** The top level of an experiment file. Stage settings are checked by each stage's own schema. */
export const experimentSchema = lazySchema((z) =>
  z.strictObject({
    name: z
      .string()
      .regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, ".", "_" and "-" only')
      .optional()
      .describe('run name; defaults to the config file name'),
    seed: z
      .int()
      .min(0)
      .max(0xffffffff)
      .default(0)
      .describe('run seed: stages without their own seed derive one'),
    modules: z
      .array(z.string())
      .default([])
      .describe('JavaScript modules (paths relative to this file) exporting extra stage definitions'),
    capacity: built(capacitySchema).prefault({}).describe('default capacity of every edge'),
    progressIntervalMs: z
      .int()
      .min(10)
      .default(500)
      .describe('how often sampled progress events are written'),
    checkpoint: built(checkpointSchema).prefault({}),
    stages: z.array(z.record(z.string(), z.unknown())).min(1).describe('the pipeline, in order'),
  }),
);

/** Keys of a stage entry that belong to the pipeline, not to the stage's settings. */
export const WIRING_KEYS = new Set(['type', 'id', 'capacity']);

export interface ResolvedStage {
  type: string;
  id: string;
  capacity: EdgeCapacity;
  settings: unknown;
  definition: StageDefinition;
}

export interface ExperimentConfig {
  /** The config file, as given. */
  file: string;
  /** Directory that relative paths resolve against. */
  baseDir: string;
  name: string;
  seed: number;
  modules: string[];
  capacity: EdgeCapacity;
  progressIntervalMs: number;
  checkpoint: CheckpointPolicy;
  stages: ResolvedStage[];
}

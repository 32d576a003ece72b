/**
 * The shape of a sweep file: which experiment to vary (`base`), what every trial shares (`fixed`),
 * the search space (`parameters`), how it is walked (`method`), what ranks the trials (`metric`,
 * `mode`) and, optionally, the ASHA scheduler. Cross-field rules (a grid needs finite domains, a
 * parameter must name a real setting of the base) are checked after parsing, in sweepFile.ts, so
 * that every problem is reported at once with its line and column.
 */
import { z } from 'zod';

const bounds = (what: string) =>
  z
    .tuple([z.number(), z.number()])
    .refine(([a, b]) => a < b, `expected [low, high] with low < high (${what})`);

/**
 * One parameter's domain. Exactly one key: `values` and `choice` list the values (a grid walks
 * them, random sampling picks one), `range` is an arithmetic grid, and `uniform`, `loguniform`
 * and `int` are distributions that only random sampling can draw from.
 */
export const parameterSchema = z
  .strictObject({
    values: z.array(z.unknown()).min(1).optional().describe('the values, in order'),
    choice: z
      .array(z.unknown())
      .min(1)
      .optional()
      .describe('the same as values (the word random search usually uses)'),
    range: z
      .strictObject({
        min: z.number(),
        max: z.number(),
        step: z.number().positive(),
      })
      .refine((r) => r.max >= r.min, 'expected max ≥ min')
      .optional()
      .describe('min, min+step, … up to max (inclusive)'),
    uniform: bounds('uniform').optional().describe('[low, high): a real drawn uniformly (random only)'),
    loguniform: bounds('loguniform')
      .refine(([a]) => a > 0, 'expected low > 0 (a log scale)')
      .optional()
      .describe('[low, high): a real whose logarithm is uniform (random only)'),
    int: z
      .tuple([z.int(), z.int()])
      .refine(([a, b]) => a <= b, 'expected [low, high] with low ≤ high')
      .optional()
      .describe('[low, high]: an integer drawn uniformly, both ends included (random only)'),
  })
  .describe('one parameter: values, choice, range, uniform, loguniform or int');

export type ParameterSpec = z.infer<typeof parameterSchema>;
export const DOMAIN_KINDS = ['values', 'choice', 'range', 'uniform', 'loguniform', 'int'] as const;
export type DomainKind = (typeof DOMAIN_KINDS)[number];

export const ashaSchema = z
  .strictObject({
    type: z.literal('asha'),
    resource: z
      .enum(['steps', 'epochs'])
      .default('steps')
      .describe('what rungs are measured in: SGD steps or passes over the training data'),
    minResource: z.number().positive().describe('the first rung'),
    reductionFactor: z
      .int()
      .min(2)
      .default(3)
      .describe('η: rung k is at minResource·η^k; the top 1/η of a rung go on'),
    maxResource: z
      .number()
      .positive()
      .optional()
      .describe('no rung at or beyond this (default: rungs go on while trials train)'),
  })
  .describe('asynchronous successive halving (ASHA): stop the trials that fall behind at each rung');

export type AshaSpec = z.infer<typeof ashaSchema>;

export const sweepSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, ".", "_" and "-" only')
    .optional()
    .describe('the sweep name; defaults to the file name'),
  base: z
    .union([z.string().min(1), z.record(z.string(), z.unknown())])
    .describe('the experiment every trial varies: a path (relative to this file) or the experiment inline'),
  fixed: z
    .record(z.string(), z.unknown())
    .default({})
    .describe('settings every trial shares, keyed like parameters (as `--set` would give them)'),
  // Each parameter is checked on its own (sweepFile.ts), so its errors come with its own hints.
  parameters: z
    .record(z.string(), z.unknown())
    .refine((p) => Object.keys(p).length > 0, 'expected at least one parameter')
    .describe('the search space: `<stageId>.<key>` (or a top-level key such as seed) → a domain'),
  method: z.enum(['grid', 'random']).default('grid').describe('every combination, or `count` samples'),
  count: z.int().min(1).optional().describe('random: how many trials to draw'),
  seed: z.int().min(0).max(0xffffffff).default(0).describe('random: the sampling seed'),
  metric: z
    .string()
    .regex(/^[A-Za-z0-9_-]+\.(accuracy|loss|f1)$/, 'expected <split>.accuracy, <split>.loss or <split>.f1')
    .default('val.accuracy')
    .describe("what ranks trials (the last evaluation's) and what ASHA compares at rungs"),
  mode: z.enum(['max', 'min']).optional().describe('default: min for a loss, else max'),
  scheduler: ashaSchema.optional(),
});

export type SweepFileSettings = z.infer<typeof sweepSchema>;

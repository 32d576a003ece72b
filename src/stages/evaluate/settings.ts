/**
 * The evaluate stage's settings and checkpoint state, as schemas (built on first use:
 * util/lazySchema.ts): what a config may say and what a checkpoint keeps of the evaluator.
 */
import type { z } from 'zod';
import { jsonIf } from '../../pipeline/jsonRule.js';
import type { ModelSnapshot } from '../../pipeline/messages.js';
import { lazySchema } from '../../util/lazySchema.js';

export const METRICS = ['accuracy', 'loss', 'f1'] as const;

export const evaluateSettings = lazySchema((z) =>
  z
    .strictObject({
      every: z.int().min(0).default(500).describe('evaluate every N steps (0: only at start and end)'),
      atStart: z.boolean().default(true).describe('evaluate the initial weights (step 0)'),
      splits: z.array(z.string()).min(1).default(['test']).describe('splits to evaluate on'),
      misclassified: z
        .int()
        .min(0)
        .max(1000)
        .default(32)
        .describe('misclassified examples recorded per evaluation'),
      metric: z
        .string()
        .regex(
          /^[a-z][a-z0-9_-]*\.(accuracy|loss|f1)$/,
          'a metric is <split>.accuracy, <split>.loss or <split>.f1',
        )
        .optional()
        .describe('what picks the best step: <split>.accuracy|loss|f1 (default: the first split’s accuracy)'),
      patience: z
        .int()
        .min(0)
        .default(0)
        .describe('stop training after this many evaluations without improvement (0: never)'),
      minDelta: z
        .number()
        .min(0)
        .default(0)
        .describe('smallest change of the metric that counts as improvement'),
    })
    .superRefine((s, ctx) => {
      const split = s.metric?.split('.')[0];
      if (split !== undefined && !s.splits.includes(split))
        ctx.addIssue({ code: 'custom', path: ['metric'], message: `split ${split} is not in splits` });
      if (s.patience > 0 && s.every === 0)
        ctx.addIssue({ code: 'custom', path: ['patience'], message: 'early stopping needs every > 0' });
    })
    // The second rule, said in JSON Schema for editors (the first needs the splits' values).
    .meta(
      jsonIf(
        { properties: { patience: { type: 'integer', minimum: 1 } }, required: ['patience'] },
        { properties: { every: { type: 'integer', minimum: 1 } } },
      ),
    ),
);
export type EvaluateSettings = z.output<typeof evaluateSettings>;

/** What a checkpoint keeps of the evaluator. */
export const evaluateState = lazySchema((z) =>
  z.strictObject({
    history: z.array(
      z.strictObject({ split: z.string(), step: z.number(), accuracy: z.number(), loss: z.number() }),
    ),
    best: z.strictObject({ metric: z.string(), step: z.number(), value: z.number() }).optional(),
    /** Evaluations since the best one. */
    sinceBest: z.int().min(0).optional(),
    /** Snapshots still waiting for their splits (weights included), evaluated after a resume. */
    pending: z
      .array(
        z.custom<ModelSnapshot>(
          (v) => typeof v === 'object' && v !== null && (v as ModelSnapshot).kind === 'snapshot',
          'expected a model snapshot',
        ),
      )
      .optional(),
  }),
);
export type EvaluateState = z.output<typeof evaluateState>;

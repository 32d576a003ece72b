/**
 * The event format as a versioned contract: every event type, its fields, their types and units,
 * as a zod schema. It is the source of the JSON Schema other tools validate against
 * (schema/events.schema.json) and of the tables in docs/events.md, and a test checks real event
 * logs against it, so the documented format and the written one cannot drift apart.
 *
 * EVENTS_VERSION is in every run-started event. Within one version, changes are additive only: a
 * new event type or a new optional field. Removing or renaming a field, or changing its type or
 * unit, is a new version. Readers ignore event types and fields they do not know.
 */
import { z } from 'zod';
import { EVENTS_VERSION } from './events.js';

export { EVENTS_VERSION } from './events.js';

const count = (what: string) => z.int().min(0).describe(what);
const ms = (what: string) => z.number().min(0).describe(`${what}, milliseconds`);

/** Fields of every event. */
const envelope = {
  time: z.string().describe('wall-clock time the event was written, ISO 8601 (UTC)'),
  elapsedMs: ms('time since the run (or the resumed run) started'),
  seq: count("position in the run's history, from 0; a resumed run continues the count"),
};

const step = count('the number of SGD updates done');
const epoch = z.number().min(0).describe('passes over the training data, fractional');

const edge = z
  .looseObject({
    depth: count('items buffered between this stage and the next'),
    capacity: count("the edge's item capacity"),
    maxDepth: count('the most items it has held'),
    bytes: count('bytes buffered'),
    capacityBytes: count("the edge's byte capacity, when it has one").optional(),
    maxBytes: count('the most bytes it has held').optional(),
    emitted: count('items this stage has put into the edge, in total').optional(),
    consumed: count('items the next stage has taken out, in total').optional(),
  })
  .describe('the bounded buffer after the stage');

const events = [
  z.strictObject({
    type: z.literal('run-started').describe('a run (or a resume of it) began'),
    run: z.string().describe("the run directory's name"),
    config: z.string().describe("the experiment's name"),
    runDir: z.string().describe('the run directory, absolute path'),
    version: z.string().describe('the rxtrain version writing the log'),
    eventsVersion: z
      .int()
      .min(1)
      .describe(
        `the version of this event format (${EVENTS_VERSION}); absent in logs written before it was versioned`,
      )
      .optional(),
    resumedFrom: count('the step a resumed run continues from').optional(),
    ...envelope,
  }),
  z.strictObject({
    type: z.literal('stage-started').describe('a stage received its first demand'),
    stage: z.string().describe('the stage id'),
    stageType: z.string().describe('the stage type'),
    index: count('its position in the pipeline, from 0'),
    ...envelope,
  }),
  z
    .looseObject({
      type: z
        .literal('stage-progress')
        .describe(
          "a stage's counters, sampled every progressIntervalMs; any other field is one of the stage's own counters (a number or a string)",
        ),
      stage: z.string().describe('the stage id'),
      edge: edge.optional(),
      ...envelope,
    })
    .catchall(z.union([z.number(), z.string()])),
  z.strictObject({
    type: z.literal('stage-finished').describe('a stage emitted its last item'),
    stage: z.string().describe('the stage id'),
    durationMs: ms('from its first demand to its end'),
    items: count('items it emitted'),
    stopped: z.literal(true).describe('ended by the stages after it (an endless sampler)').optional(),
    cached: z.literal(true).describe('did not run: the data-stage cache replayed its output').optional(),
    ...envelope,
  }),
  z.strictObject({
    type: z.literal('train').describe('training progress, every logEvery steps'),
    step,
    epoch,
    samples: count('training samples used so far'),
    loss: z
      .number()
      .min(0)
      .describe('mean cross-entropy (nats) of the batches since the previous train event'),
    accuracy: z
      .number()
      .min(0)
      .max(1)
      .describe('share of those samples classified correctly before their update'),
    lr: z.number().min(0).describe('the learning rate of the last step'),
    samplesPerSec: z.number().min(0).describe('training samples per second since the previous train event'),
    ...envelope,
  }),
  z.strictObject({
    type: z.literal('eval').describe('an evaluation of the model at a step on one split'),
    split: z.string().describe('the split evaluated (test, val, …)'),
    step,
    epoch,
    examples: count('examples evaluated'),
    accuracy: z.number().min(0).max(1).describe('share classified correctly'),
    loss: z.number().min(0).describe('mean cross-entropy, nats'),
    classes: count('number of classes').optional(),
    confusion: z
      .array(z.int().min(0))
      .describe('counts, row-major [true][predicted], classes² of them')
      .optional(),
    precision: z.array(z.number()).describe('per class, in [0, 1]').optional(),
    recall: z.array(z.number()).describe('per class, in [0, 1]').optional(),
    f1: z.array(z.number()).describe('per class, in [0, 1]').optional(),
    misclassified: z
      .array(
        z.strictObject({
          index: count('example index in the split'),
          label: count('true class'),
          predicted: count('predicted class'),
        }),
      )
      .describe('the first few misclassified examples')
      .optional(),
    best: z
      .strictObject({
        metric: z.string().describe('<split>.accuracy|loss|f1'),
        step: count('the step of the best evaluation'),
        value: z.number().describe('its value'),
      })
      .describe('the best evaluation so far, this one included')
      .optional(),
    earlyStop: z.string().describe('why training stops: set on the evaluation that stopped it').optional(),
    ...envelope,
  }),
  z.strictObject({
    type: z.literal('checkpoint').describe('a checkpoint is about to be written (the log is synced first)'),
    step,
    reason: z.enum(['interval', 'time', 'signal', 'final', 'early-stop']).describe('why it was taken'),
    file: z.string().describe('the checkpoint file, relative to the run directory'),
    ...envelope,
  }),
  z.strictObject({
    type: z.literal('cache').describe('the download cache (stage fetch) or the data-stage cache'),
    stage: z.string().describe('the last of the cached stages'),
    action: z
      .enum(['hit', 'miss', 'write', 'bypass'])
      .describe('replayed, not usable, stored, not cacheable'),
    key: z.string().describe('the cache key'),
    path: z.string().describe('the cache entry, absolute path'),
    stages: z.array(z.string()).describe('every stage the cache stands in for').optional(),
    bytes: count('size of the entry, bytes').optional(),
    reason: z.string().describe('why it was missed or bypassed').optional(),
    ...envelope,
  }),
  z.strictObject({
    type: z.literal('resumed').describe('a resume continued the run'),
    step: count('the step training continues from (0: a fresh start)'),
    checkpoint: z.string().nullable().describe('the checkpoint resumed from, or null'),
    eventsCut: count('bytes of the log after that checkpoint that were cut'),
    invalid: z.array(z.string()).describe('newer checkpoints that failed to verify and were set aside'),
    ...envelope,
  }),
  z.strictObject({
    type: z.literal('warning').describe('something went wrong and was worked around'),
    stage: z.string().describe('the stage id').optional(),
    code: z.string().describe('W_…, stable'),
    message: z.string().describe('for people'),
    ...envelope,
  }),
  z.looseObject({
    type: z
      .literal('error')
      .describe('the run failed; any other field is context: file, offset, url, archive, entry…'),
    stage: z.string().describe('the stage id').optional(),
    code: z.string().describe('E_…, stable'),
    message: z.string().describe('for people'),
    ...envelope,
  }),
  z.strictObject({
    type: z.literal('run-finished').describe('the last event of a run'),
    status: z.enum(['completed', 'failed', 'interrupted']).describe('how it ended'),
    steps: step,
    durationMs: ms('the run, from its start (a resume: from the resume)'),
    exitCode: z.int().describe('the exit code of rxtrain run'),
    ...envelope,
  }),
] as const;

/** Any one line of events.ndjson. */
export const eventSchema = z.discriminatedUnion('type', events);

/** The event types of the contract, in the order docs/events.md lists them. */
export const EVENT_TYPES = events.map((e) => e.shape.type.value);

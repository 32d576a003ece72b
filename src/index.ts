/**
 * rxtrain as a library: the stage definitions, the Flow primitives to write new stages with, the
 * config loader and the run function.
 *
 * @example
 *   import { builtinStages, loadConfig, runExperiment } from 'rxtrain';
 *   const config = await loadConfig('config/mnist-logreg.yaml', { stages: builtinStages });
 *   const summary = await runExperiment({ config });
 */

export {
  concatFlows,
  consume,
  Demand,
  deferFlow,
  type EdgeCapacity,
  type EdgeStats,
  type Emitter,
  edge,
  edgeStats,
  emptyFlow,
  type Flow,
  type FlowOperator,
  fromArray,
  fromPush,
  fromReadable,
  mapFlow,
  type Overflow,
  type Transformer,
  transform,
} from './flow/index.js';
export {
  configFromObject,
  type ExperimentConfig,
  type LoadOptions,
  loadConfig,
  resolvedYaml,
} from './pipeline/config.js';
export { EVENT_TYPES, eventSchema } from './pipeline/eventSchema.js';
export {
  type Clock,
  EVENTS_VERSION,
  EventBus,
  parseEvents,
  type RxtrainEvent,
  type RxtrainEventInput,
  systemClock,
} from './pipeline/events.js';
export { experimentJsonSchema } from './pipeline/jsonSchema.js';
export { type LoadedModel, loadModel, type Prediction } from './pipeline/loadModel.js';
export type * from './pipeline/messages.js';
export { sampleRow } from './pipeline/messages.js';
export { type ResumeOptions, type ResumeResult, resumeExperiment } from './pipeline/resume.js';
export { defaultCacheDir, type RunOptions, type RunSummary, runExperiment } from './pipeline/run.js';
export {
  defineStage,
  type FingerprintOptions,
  type ProgressView,
  type RunProgress,
  type StageContext,
  type StageDefinition,
  type StageState,
  type StageWiring,
  type WiringNeed,
} from './pipeline/stage.js';
export type {
  ModelProducer,
  SnapshotRequest,
  StepVerdict,
  TrainingControl,
  TrainingGate,
} from './pipeline/training.js';
export { type RunningServer, type ServeOptions, startServer } from './serve/server.js';
export * from './stages/index.js';
export { builtinStages } from './stages/index.js';
export { trustedCertificates } from './util/caCertificates.js';
export * from './util/errors.js';
export { Prng, sampleSeed } from './util/random.js';
export { VERSION } from './util/version.js';

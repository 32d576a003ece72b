/**
 * The built-in stages, listed explicitly: `type:` in a config picks one of these (or a stage from
 * a module the config names). Nothing registers itself as a side effect of being imported.
 */
import type { StageDefinition } from '../pipeline/stage.js';
import { augmentStage } from './augment.js';
import { decodeIdxStage } from './decodeIdx.js';
import { decodeRecordsStage } from './decodeRecords.js';
import { evaluateStage } from './evaluate.js';
import { fetchStage } from './fetch.js';
import { normaliseStage } from './normalise.js';
import { sgdStage } from './sgd.js';
import { shuffleStage } from './shuffle.js';
import { untarStage } from './untar.js';

export const builtinStages: readonly StageDefinition[] = [
  fetchStage,
  untarStage,
  decodeIdxStage,
  decodeRecordsStage,
  normaliseStage,
  shuffleStage,
  augmentStage,
  sgdStage,
  evaluateStage,
];

export {
  augmentStage,
  decodeIdxStage,
  decodeRecordsStage,
  evaluateStage,
  fetchStage,
  normaliseStage,
  sgdStage,
  shuffleStage,
  untarStage,
};

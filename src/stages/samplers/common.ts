import type { FeatureTransform } from '../../pipeline/messages.js';
import type { StageContext } from '../../pipeline/stage.js';
import { RxtrainError } from '../../util/errors.js';
import { Prng } from '../../util/random.js';
import type { ShuffleSettings } from '../shuffle.js';

/** Two independent generators from the stage's seed: one for sampling, one for the holdout. */
export function generators(
  settings: ShuffleSettings,
  ctx: StageContext,
): { sampling: Prng; holdoutSeed: number } {
  const root = ctx.rng(settings.seed);
  const sampling = new Prng(root.nextUint32());
  return { sampling, holdoutSeed: root.nextUint32() };
}

export function holdoutSize(settings: ShuffleSettings, n: number): number {
  const h = settings.holdout;
  if (!h) return 0;
  const k = h.size ?? Math.round(h.fraction! * n);
  if (k >= n) {
    throw new RxtrainError(
      'E_DATA',
      `shuffle.holdout: cannot hold out ${k} of ${n} ${settings.split} examples`,
    );
  }
  return k;
}

/** The transform of the latest `features` message, which must have come before sampling starts. */
export function requireTransform(
  t: FeatureTransform | undefined,
  settings: ShuffleSettings,
): FeatureTransform {
  if (t) return t;
  if (settings.mode === 'buffer') {
    throw new RxtrainError(
      'E_CONFIG',
      'shuffle: sampling began before a feature transform arrived: add a normalise stage before shuffle, and with shuffle.mode buffer set normalise.mean and normalise.std (statistics from the training split are final only at its end)',
    );
  }
  throw new RxtrainError(
    'E_DATA',
    `shuffle: no feature transform reached the sampler with the ${settings.split} examples (add a normalise stage before shuffle)`,
  );
}

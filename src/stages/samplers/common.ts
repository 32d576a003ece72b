import type { Examples, FeatureTransform } from '../../pipeline/messages.js';
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

/** Buffer mode samples while the split arrives, so it must know the split's size from its first batch. */
export function requireSplitSize(batch: Examples, settings: ShuffleSettings): number {
  if (batch.splitSize !== undefined) return batch.splitSize;
  throw new RxtrainError(
    'E_CONFIG',
    `shuffle: buffer mode needs the size of split ${settings.split} before it ends, and ${batch.source} does not say it (fixed-size records give no count in advance): use shuffle.mode permutation`,
  );
}

/**
 * Classes that no training sample has, from the label counts of the samples drawn from: a
 * `W_CLASS_UNUSED` warning naming them (a typo'd `decodeIdx.classes`, a filtered split, a holdout
 * that took a rare class whole). The model still has an output for each; it never learns them.
 */
export function warnUnusedClasses(
  ctx: StageContext,
  settings: ShuffleSettings,
  labelCounts: Int32Array,
  classNames: readonly string[] | undefined,
): void {
  const unused: string[] = [];
  for (const [c, n] of labelCounts.entries()) {
    if (n === 0) unused.push(classNames ? `${c} (${classNames[c]})` : String(c));
  }
  if (unused.length === 0) return;
  const shown = unused.length > 20 ? [...unused.slice(0, 20), '…'] : unused;
  ctx.events.emit({
    type: 'warning',
    stage: ctx.id,
    code: 'W_CLASS_UNUSED',
    message: `${unused.length} of ${labelCounts.length} classes have no ${settings.split} examples to train on: ${shown.join(', ')}; the model has an output for each but never learns them`,
  });
}

/** How many of `rows` carry each label. */
export function labelCounts(labels: Int32Array, rows: ArrayLike<number>, classes: number): Int32Array {
  const counts = new Int32Array(classes);
  for (let i = 0; i < rows.length; i++) counts[labels[rows[i]!]!]!++;
  return counts;
}

/** How the sgd stage's progress reads on the terminal. */
import type { ProgressView, RunProgress } from '../../pipeline/stage.js';
import { count } from '../../util/format.js';

/** What sgd reports with `ctx.progress`, once per block of samples. */
export interface SgdCounters {
  /** Updates done, and planned in all. */
  step: number;
  totalSteps: number;
  /** Passes over the training population so far (0 while its size is unknown). */
  epoch: number;
  /** The last batch's mean loss. */
  loss: number;
  /** The learning rate of the last update. */
  lr: number;
}

/**
 * `step 1,000/4,000  epoch 1.25  loss 0.4100  64,000 samples/s`; the renderer adds the ETA. The
 * train events' numbers win over the sampled counters: their loss is the mean since the last one,
 * the counter's one batch's.
 */
export function describeSgdProgress(c: Partial<SgdCounters>, run: RunProgress): ProgressView {
  const { train } = run;
  const step = Math.max(c.step ?? 0, train?.step ?? 0);
  const total = c.totalSteps;
  const parts = [`step ${count(step)}${total ? `/${count(total)}` : ''}`];
  const epoch = train && train.step >= step ? train.epoch : c.epoch;
  if (epoch !== undefined) parts.push(`epoch ${epoch.toFixed(2)}`);
  const loss = train?.loss ?? c.loss;
  if (loss !== undefined) parts.push(`loss ${loss.toFixed(4)}`);
  if (train) parts.push(`${count(train.samplesPerSec)} samples/s`);
  const training = c.step !== undefined || train !== undefined;
  return { text: parts.join('  '), steps: training ? { done: step, total } : undefined, keep: true };
}

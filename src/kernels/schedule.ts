/**
 * Learning-rate schedules: pure functions of the update's index, so a resumed run recomputes the
 * same rate from its step count alone and nothing about the schedule needs checkpointing.
 *
 * Durations are in updates; the sgd stage converts its epoch-based settings once it knows the
 * number of updates per pass.
 */

export type ScheduleShape =
  | { type: 'constant' }
  /** lr · gamma^⌊t / every⌋ (PyTorch's StepLR). */
  | { type: 'step'; every: number; gamma: number }
  /** lr · gamma^(t / period): decays smoothly by gamma per period (an epoch). */
  | { type: 'exponential'; period: number; gamma: number }
  /** min + (lr − min)·(1 + cos(π·t / span))/2 over the updates after warm-up (PyTorch's CosineAnnealingLR). */
  | { type: 'cosine'; min: number };

export interface LearningRatePlan {
  lr: number;
  schedule: ScheduleShape;
  /** Updates of linear warm-up: update t < warmup uses rate·(t+1)/warmup. */
  warmup: number;
  /** All the updates of the run (the cosine's span ends there). */
  total: number;
}

/** The learning rate of update t (0-based: t updates came before it). */
export function learningRate(plan: LearningRatePlan, t: number): number {
  const { lr, schedule, warmup, total } = plan;
  const after = Math.max(0, t - warmup);
  let rate: number;
  switch (schedule.type) {
    case 'constant':
      rate = lr;
      break;
    case 'step':
      rate = lr * schedule.gamma ** Math.floor(after / Math.max(1, schedule.every));
      break;
    case 'exponential':
      rate = lr * schedule.gamma ** (after / Math.max(1, schedule.period));
      break;
    case 'cosine': {
      const span = Math.max(1, total - warmup);
      const progress = Math.min(1, after / span);
      rate = schedule.min + ((lr - schedule.min) * (1 + Math.cos(Math.PI * progress))) / 2;
      break;
    }
  }
  return t < warmup ? (rate * (t + 1)) / warmup : rate;
}

/** A schedule as the sgd stage's settings give it: durations in epochs (fractions allowed). */
export type EpochSchedule =
  | { type: 'constant' }
  | { type: 'step'; every: number; gamma: number }
  | { type: 'exponential'; gamma: number }
  | { type: 'cosine'; min: number };

/**
 * The learning-rate plan in updates, once the updates per pass are known: an epoch duration
 * becomes a whole number of updates (at least 1), the exponential decay's period one pass.
 */
export function planInSteps(
  lr: number,
  schedule: EpochSchedule,
  warmupEpochs: number,
  perEpoch: number,
  total: number,
): LearningRatePlan {
  const updates = (epochs: number) => Math.max(1, Math.round(epochs * perEpoch));
  const shape: ScheduleShape =
    schedule.type === 'step'
      ? { type: 'step', every: updates(schedule.every), gamma: schedule.gamma }
      : schedule.type === 'exponential'
        ? { type: 'exponential', period: perEpoch, gamma: schedule.gamma }
        : schedule;
  return { lr, schedule: shape, warmup: warmupEpochs > 0 ? updates(warmupEpochs) : 0, total };
}

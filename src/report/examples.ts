/**
 * The pixels of a few evaluated examples (the misclassified ones an `eval` event names by index),
 * got the way the run got them: by running the run's own config, but only its data stages — the
 * stages before the first stateful one (fetch → untar → decodeIdx → normalise for MNIST). The run
 * directory keeps indices, not images, so the event log stays small; the embedded MNIST is local
 * and a downloaded archive is in the cache, so this costs a fraction of a second.
 *
 * The evaluator numbers a split's examples in the order they arrive, which is the order of the
 * split's files (decodeIdx emits in file order), so index i is `start + row` of an `examples`
 * message. Reading stops as soon as every wanted example has passed.
 */

import { consume } from '../flow/index.js';
import { buildPipeline, dataStagesOnly } from '../pipeline/compose.js';
import { loadConfig } from '../pipeline/config.js';
import { EventBus, systemClock } from '../pipeline/events.js';
import type { Message } from '../pipeline/messages.js';
import type { StageDefinition } from '../pipeline/stage.js';
import { builtinStages } from '../stages/index.js';
import { RxtrainError } from '../util/errors.js';

export interface PickedExamples {
  /** Shape of one example, e.g. [28, 28]. */
  shape: readonly number[];
  /** Raw values of each found example (bytes stay bytes), by index within the split. */
  rows: Map<number, Uint8Array | Float32Array>;
}

export interface PickOptions {
  cacheDir: string;
  stages?: readonly StageDefinition[];
}

export async function pickExamples(
  configFile: string,
  split: string,
  indices: readonly number[],
  options: PickOptions,
): Promise<PickedExamples> {
  // Read, never run: no user modules from the run directory, no network (the download cache only).
  const config = await loadConfig(configFile, {
    stages: options.stages ?? builtinStages,
    importModules: false,
  });
  const stop = new AbortController();
  const dataStages = dataStagesOnly(config).stages;
  const pipeline = buildPipeline(
    { ...config, stages: dataStages },
    {
      events: new EventBus(systemClock),
      clock: systemClock,
      cacheDir: options.cacheDir,
      stopSignal: stop.signal,
      sliceMs: 25,
      offline: true,
    },
  );

  const wanted = new Set(indices);
  const rows = new Map<number, Uint8Array | Float32Array>();
  let shape: readonly number[] = [];
  let splitSeen = false;
  let finish: () => void = () => {};
  const found = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const run = consume<Message>(
    pipeline.flow,
    (message) => {
      if (message.kind === 'split-end' && message.split === split) finish();
      if (message.kind !== 'examples' || message.split !== split) return;
      splitSeen = true;
      shape = message.shape;
      for (const index of wanted) {
        const row = index - message.start;
        if (row < 0 || row >= message.count) continue;
        // A copy: the message's buffer may be reused or held far longer than this one row.
        rows.set(index, message.data.slice(row * message.width, (row + 1) * message.width));
      }
      if (rows.size === wanted.size) finish();
    },
    { prefetch: 4 },
  );
  try {
    await Promise.race([found, run.done]);
  } finally {
    run.cancel();
  }
  if (!splitSeen)
    throw new RxtrainError(
      'E_DATA',
      `${configFile}: the data stages (${dataStages.map((s) => s.id).join(' -> ')}) produce no "${split}" split`,
    );
  return { shape, rows };
}

/**
 * evaluate — measure model snapshots on held-out splits.
 *
 * Collects the examples of its `splits` (the test set; `val` when the sampler holds one out) as
 * they pass, and asks the model producer upstream for a snapshot before training (`atStart`),
 * every `every` steps and at the end. For each it computes accuracy, mean cross-entropy, the
 * confusion matrix with per-class precision, recall and F1, and a few misclassified examples, and
 * emits an `eval` event per split. A snapshot that arrives before its splits are complete waits,
 * in order, until they are. Results ride on the snapshot to the end of the pipeline.
 *
 * @example
 *   - type: evaluate
 *     every: 500
 *     splits: [val, test]
 */
import { z } from 'zod';
import { ExampleStore } from '../data/exampleStore.js';
import { evaluateSet } from '../kernels/sgdStep.js';
import { RxtrainError } from '../pipeline/errors.js';
import { type Emitter, transform } from '../pipeline/flow.js';
import type { EvalResult, Message, ModelSnapshot } from '../pipeline/messages.js';
import { defineStage } from '../pipeline/stage.js';

export const evaluateSettings = z.strictObject({
  every: z.int().min(0).default(500).describe('evaluate every N steps (0: only at start and end)'),
  atStart: z.boolean().default(true).describe('evaluate the initial weights (step 0)'),
  splits: z.array(z.string()).min(1).default(['test']).describe('splits to evaluate on'),
  misclassified: z
    .int()
    .min(0)
    .max(1000)
    .default(32)
    .describe('misclassified examples recorded per evaluation'),
});
export type EvaluateSettings = z.output<typeof evaluateSettings>;

/** What a checkpoint keeps of the evaluator: the history of its results. */
export interface EvaluateState {
  history: { split: string; step: number; accuracy: number; loss: number }[];
  /** Snapshots still waiting for their splits (weights included), evaluated after a resume. */
  pending?: ModelSnapshot[];
}

export const evaluateStage = defineStage<EvaluateSettings>({
  type: 'evaluate',
  summary: 'accuracy, cross-entropy, confusion matrix and per-class scores on test/validation splits',
  settings: evaluateSettings,
  stateful: true,
  snapshots: (s) => ({ atStart: s.atStart, every: s.every }),
  create: (settings, ctx) => (input) =>
    transform<Message, Message>(input, () => {
      const stores = new Map<string, ExampleStore>();
      const complete = new Set<string>();
      const restored = ctx.restored as EvaluateState | undefined;
      const waiting: ModelSnapshot[] = [...(restored?.pending ?? [])];
      const history: EvaluateState['history'] = [...(restored?.history ?? [])];
      for (const split of settings.splits) stores.set(split, new ExampleStore(split));

      const ready = () => settings.splits.every((s) => complete.has(s));
      const mine = (s: ModelSnapshot) =>
        s.final ||
        (s.evaluate &&
          (s.step === 0 ? settings.atStart : settings.every > 0 && s.step % settings.every === 0));

      const evaluate = (snap: ModelSnapshot) => {
        for (const split of settings.splits) {
          const store = stores.get(split)!;
          const t = snap.transform;
          const C = snap.classes;
          const wrong: EvalResult['misclassified'] = [];
          const { accuracy, loss, confusion } = evaluateSet(
            snap.weights,
            C,
            store.data,
            store.labels,
            store.count,
            t,
            (row, predicted) => {
              if (wrong.length < settings.misclassified && predicted !== store.labels[row]) {
                wrong.push({ index: row, label: store.labels[row]!, predicted });
              }
            },
          );
          const matrix = Array.from(confusion);
          const { precision, recall, f1 } = perClass(matrix, C);
          const result: EvalResult = {
            split,
            step: snap.step,
            epoch: snap.epoch,
            examples: store.count,
            accuracy,
            loss,
            confusion: matrix,
            misclassified: wrong,
          };
          snap.results.push(result);
          history.push({ split, step: snap.step, accuracy, loss });
          ctx.events.emit({
            type: 'eval',
            split,
            step: snap.step,
            epoch: snap.epoch,
            examples: store.count,
            accuracy,
            loss,
            classes: C,
            confusion: matrix,
            precision,
            recall,
            f1,
            misclassified: wrong,
          });
          ctx.progress({
            split,
            step: snap.step,
            accuracy: Number(accuracy.toFixed(4)),
            loss: Number(loss.toFixed(4)),
          });
        }
      };

      const forward = (snap: ModelSnapshot, out: Emitter<Message>) => {
        if (mine(snap)) evaluate(snap);
        if (snap.checkpoint)
          snap.checkpoint.states[ctx.id] = {
            history: [...history],
            pending: [...waiting],
          } satisfies EvaluateState;
        out.push(snap);
      };

      const release = (out: Emitter<Message>) => {
        while (waiting.length > 0 && ready()) forward(waiting.shift()!, out);
      };

      return {
        next(message, out) {
          if (message.kind === 'examples' && stores.has(message.split)) {
            if (complete.has(message.split)) return; // a later pass re-sending a split already held
            stores.get(message.split)!.add(message);
            return;
          }
          if (message.kind === 'split-end' && stores.has(message.split)) {
            complete.add(message.split);
            stores.get(message.split)!.trim();
            release(out);
            return;
          }
          if (message.kind !== 'snapshot') {
            out.push(message);
            return;
          }
          // Keep order: a snapshot never overtakes one that is waiting for data…
          if (waiting.length > 0 || (mine(message) && !ready())) {
            // …except a checkpoint before the end: the updater waits for it to be written, so the
            // data the waiting ones need (a holdout drawn during the first pass) would never come.
            // It goes on now, holding the waiting snapshots in this stage's state; its own
            // evaluation, if due, waits in a copy.
            if (message.checkpoint && !message.final) {
              const { checkpoint, ...plain } = message;
              if (mine(message)) waiting.push({ ...plain, results: [] });
              forward({ ...plain, evaluate: false, checkpoint }, out);
            } else waiting.push(message);
          } else forward(message, out);
        },
        complete() {
          // Stopped by a signal, the waiting snapshots are in the stop's checkpoint: no error.
          if (waiting.length > 0 && !ctx.stopSignal.aborted) {
            const missing = settings.splits.filter((s) => !complete.has(s));
            throw new RxtrainError(
              'E_DATA',
              `evaluate: split${missing.length > 1 ? 's' : ''} ${missing.join(', ')} never arrived in full (${missing
                .map((s) => `${stores.get(s)!.count} ${s} examples seen`)
                .join(', ')}); check decodeIdx.splits and shuffle.holdout`,
            );
          }
        },
      };
    }),
});

/** Per-class precision, recall and F1 from a confusion matrix (rows: true class). */
export function perClass(
  confusion: readonly number[],
  classes: number,
): { precision: number[]; recall: number[]; f1: number[] } {
  const precision: number[] = [];
  const recall: number[] = [];
  const f1: number[] = [];
  for (let c = 0; c < classes; c++) {
    let predicted = 0;
    let actual = 0;
    for (let k = 0; k < classes; k++) {
      predicted += confusion[k * classes + c]!;
      actual += confusion[c * classes + k]!;
    }
    const tp = confusion[c * classes + c]!;
    const p = predicted ? tp / predicted : 0;
    const r = actual ? tp / actual : 0;
    precision.push(p);
    recall.push(r);
    f1.push(p + r ? (2 * p * r) / (p + r) : 0);
  }
  return { precision, recall, f1 };
}

/**
 * evaluate — measure model snapshots on held-out splits, track the best, optionally stop early.
 *
 * Collects the examples of its `splits` (the test set; `val` when the sampler holds one out with
 * `shuffle.holdout`) as they pass, and asks the model producer upstream for a snapshot before
 * training (`atStart`), every `every` steps and at the end. For each it computes accuracy, mean
 * cross-entropy, the confusion matrix with per-class precision, recall and F1, and a few
 * misclassified examples, and emits an `eval` event per split. A snapshot that arrives before its
 * splits are complete waits, in order, until they are. Results ride on the snapshot to the end of
 * the pipeline.
 *
 * `metric` (`<split>.accuracy`, `.loss` or `.f1`, the macro-averaged F1; loss is better lower)
 * picks the best evaluation, reported on every `eval` event. With `patience: N` training stops once
 * N evaluations in a row have not improved it by more than `minDelta`: choose a `val` metric, since
 * stopping on the test set would make the test score optimistic.
 *
 * @example
 *   - type: evaluate
 *     every: 500
 *     splits: [val, test]
 *     metric: val.loss
 *     patience: 3
 */

import { type Emitter, transform } from '../flow/index.js';
import { createModelKernel, type ModelKernel } from '../kernels/modelKernel.js';
import { evaluateSet } from '../kernels/sgdStep.js';
import { ExampleStore } from '../pipeline/exampleStore.js';
import type { EvalResult, Message, ModelSnapshot } from '../pipeline/messages.js';
import type { ProgressView, RunProgress } from '../pipeline/stage.js';
import { defineStage } from '../pipeline/stage.js';
import { RxtrainError } from '../util/errors.js';
import { count } from '../util/format.js';
import {
  type EvaluateSettings,
  type EvaluateState,
  evaluateSettings,
  evaluateState,
  type METRICS,
} from './evaluate/settings.js';

export {
  type EvaluateSettings,
  type EvaluateState,
  evaluateSettings,
  evaluateState,
} from './evaluate/settings.js';

/** The best evaluation so far by the chosen metric. */
export interface BestEvaluation {
  metric: string;
  step: number;
  value: number;
}

/** Rows per forward pass of the evaluation kernel. */
const CHUNK_ROWS = 256;

export const evaluateStage = defineStage<EvaluateSettings, EvaluateState>({
  type: 'evaluate',
  summary: 'accuracy, cross-entropy, confusion, per-class F1 on val/test splits; best step, early stopping',
  settings: evaluateSettings,
  describeProgress: describeEvaluateProgress,
  wiring: evaluateWiring,
  state: evaluateState,
  snapshots: (s) => ({ atStart: s.atStart, every: s.every }),
  create: (settings, ctx) => {
    const metric = settings.metric ?? `${settings.splits[0]}.accuracy`;
    const [metricSplit, metricName] = metric.split('.') as [string, (typeof METRICS)[number]];
    const lowerIsBetter = metricName === 'loss';
    const control = ctx.training.control;
    if (settings.patience > 0) control.judge();
    return (input) =>
      transform<Message, Message>(input, () => {
        const stores = new Map<string, ExampleStore>();
        const complete = new Set<string>();
        let waiting: ModelSnapshot[] = [];
        let history: EvaluateState['history'] = [];
        let best: BestEvaluation | undefined;
        let sinceBest = 0;
        ctx.state({
          snapshot: () => ({
            history: [...history],
            ...(best ? { best: { ...best }, sinceBest } : {}),
            pending: [...waiting],
          }),
          restore: (state) => {
            waiting = [...(state.pending ?? [])];
            history = [...state.history];
            best = state.best;
            sinceBest = state.sinceBest ?? 0;
          },
        });
        let lastEvaluated: ModelSnapshot | undefined;
        const kernels = new Map<string, ModelKernel>();
        for (const split of settings.splits) stores.set(split, new ExampleStore(split));

        const ready = () => settings.splits.every((s) => complete.has(s));
        const mine = (s: ModelSnapshot) =>
          s.final ||
          (s.evaluate &&
            (s.step === 0 ? settings.atStart : settings.every > 0 && s.step % settings.every === 0));

        /** One kernel per model architecture and value type, made on first use. */
        const kernelFor = (snap: ModelSnapshot, store: ExampleStore) => {
          const floats = store.data instanceof Float32Array;
          const key = `${JSON.stringify(snap.architecture)}/${floats}`;
          let kernel = kernels.get(key);
          if (!kernel) {
            kernel = createModelKernel(snap.architecture, floats, CHUNK_ROWS);
            kernels.set(key, kernel);
          }
          return kernel;
        };

        /** Track the best evaluation; the reason to stop, when patience has run out. */
        const judge = (snap: ModelSnapshot): string | undefined => {
          const r = snap.results.find((x) => x.split === metricSplit);
          if (!r) return undefined;
          const value = metricName === 'f1' ? macroF1(r.confusion, snap.classes) : r[metricName];
          const margin = lowerIsBetter ? (best ? best.value - value : 1) : best ? value - best.value : 1;
          if (!best || margin > settings.minDelta) {
            best = { metric, step: snap.step, value };
            sinceBest = 0;
          } else sinceBest++;
          if (settings.patience > 0 && sinceBest >= settings.patience && !snap.final) {
            return `${metric} has not improved for ${sinceBest} evaluations (best ${best.value.toFixed(4)} at step ${best.step})`;
          }
          return undefined;
        };

        const evaluate = (snap: ModelSnapshot): string | undefined => {
          if (
            lastEvaluated &&
            lastEvaluated.step === snap.step &&
            lastEvaluated.weights.length === snap.weights.length
          ) {
            // The final snapshot of a run that stopped right after an evaluation: same weights.
            snap.results.push(...lastEvaluated.results);
            return undefined;
          }
          const events: Parameters<typeof ctx.events.emit>[0][] = [];
          for (const split of settings.splits) {
            const store = stores.get(split)!;
            const C = snap.classes;
            const wrong: EvalResult['misclassified'] = [];
            const { accuracy, loss, confusion } = evaluateSet(
              kernelFor(snap, store),
              snap.weights,
              store.data,
              store.labels,
              store.count,
              snap.transform,
              (row, predicted) => {
                if (wrong.length < settings.misclassified && predicted !== store.labels[row]) {
                  wrong.push({ index: row, label: store.labels[row]!, predicted });
                }
              },
              true,
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
            const names = snap.classNames ? { classNames: [...snap.classNames] } : {};
            events.push({ type: 'eval', ...result, classes: C, ...names, precision, recall, f1 });
            ctx.progress({
              split,
              step: snap.step,
              accuracy: Number(accuracy.toFixed(4)),
              loss: Number(loss.toFixed(4)),
            } satisfies EvaluateCounters);
          }
          lastEvaluated = snap;
          const stop = judge(snap);
          for (const e of events) {
            if (e.type !== 'eval') continue;
            if (best) e.best = { ...best };
            if (stop && e.split === metricSplit) e.earlyStop = stop;
            ctx.events.emit(e);
          }
          if (best)
            ctx.progress({
              bestStep: best.step,
              best: Number(best.value.toFixed(4)),
            } satisfies Partial<EvaluateCounters>);
          return stop;
        };

        const forward = (snap: ModelSnapshot, out: Emitter<Message>) => {
          const stop = mine(snap) ? evaluate(snap) : undefined;
          // The producer waits for a verdict on exactly the snapshots it sent for evaluation.
          if (settings.patience > 0 && snap.evaluate && !snap.final) control.verdict(snap.step, stop);
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
            // Keep order: a snapshot never overtakes one that is waiting for data. A checkpoint
            // barrier does: it passes on like any message this stage does not know, and the
            // snapshots waiting for data (a holdout drawn during the first pass) go into this
            // stage's state.
            if (waiting.length > 0 || (mine(message) && !ready())) {
              if (settings.patience > 0 && message.evaluate && !message.final) {
                // The updater waits for a verdict that needs data it has not yet let through.
                throw new RxtrainError(
                  'E_CONFIG',
                  `evaluate.patience: step ${message.step} must be judged before training goes on, but the ${settings.splits
                    .filter((x) => !complete.has(x))
                    .join(
                      ', ',
                    )} split is still arriving (a buffer sampler's holdout comes during training); use a permutation sampler or patience: 0`,
                );
              }
              waiting.push(message);
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
      });
  },
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

/** The unweighted mean of the per-class F1 scores. */
export function macroF1(confusion: readonly number[], classes: number): number {
  const { f1 } = perClass(confusion, classes);
  return f1.reduce((a, b) => a + b, 0) / classes;
}

/**
 * Evaluates the model of a producer before it on splits that stages before it provide; provides
 * `metric:<split>` for each split it scores (what `checkpoint.keepBest` may name).
 */
function evaluateWiring(settings: EvaluateSettings) {
  return {
    provides: settings.splits.map((split) => `metric:${split}`),
    needs: [
      { token: 'model', hint: 'add a model producer such as sgd before it' },
      ...settings.splits.map((split, i) => ({
        token: `split:${split}`,
        key: ['splits', i],
        hint: 'add shuffle.holdout to hold one out',
      })),
    ],
  };
}

/** What evaluate reports with `ctx.progress`: the split scored last, and the best so far. */
export interface EvaluateCounters {
  split: string;
  step: number;
  accuracy: number;
  loss: number;
  /** The best evaluation by the chosen metric, once there is one. */
  bestStep?: number;
  best?: number;
}

/**
 * `test accuracy 0.9087 loss 0.3334 @ step 1,000` for every split, from the `eval` events: the
 * counters hold only the split scored last. Also the summary on the trainer's status line.
 */
export function describeEvaluateProgress(_c: Partial<EvaluateCounters>, run: RunProgress): ProgressView {
  const scores = [...run.evals]
    .map(
      ([split, e]) =>
        `${split} accuracy ${e.accuracy.toFixed(4)} loss ${e.loss.toFixed(4)} @ step ${count(e.step)}`,
    )
    .join('; ');
  // Scores come from the run's events, not counters: the line reads the same before it reports.
  const text = scores || 'waiting for the first snapshot';
  return { text, idle: text, keep: true, summary: scores || undefined };
}

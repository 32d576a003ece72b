// A stateful stage written outside rxtrain: counts the model snapshots that pass it and the best
// test accuracy seen so far, and reports both as progress. Put it after `evaluate`.
//
// The state contract (src/pipeline/stage.ts): a stage with state declares its schema as `state`
// and, when its flow starts, hands the pipeline two functions with `ctx.state({ snapshot,
// restore })`. The pipeline decides when checkpoints are taken; when a checkpoint barrier reaches
// this stage, every message before it has been handled, and `snapshot()` is asked for the state
// (small plain data). `rxtrain resume` calls `restore()` with that state, checked against the
// schema, before any message arrives. Nothing else is needed: no pipeline code knows this stage.
import { defineStage, transform } from 'rxtrain';
import { z } from 'zod';

export const runningCountStage = defineStage({
  type: 'runningCount',
  summary: 'count the model snapshots that pass, and the best test accuracy so far',
  settings: z.strictObject({
    split: z.string().default('test').describe('the split whose accuracy is tracked'),
  }),
  state: z.strictObject({ snapshots: z.int().min(0), best: z.number().nullable() }),
  create: (settings, ctx) => (input) =>
    transform(input, () => {
      let snapshots = 0;
      let best = null;
      ctx.state({
        snapshot: () => ({ snapshots, best }),
        restore: (state) => {
          ({ snapshots, best } = state);
        },
      });
      return {
        next(message, out) {
          if (message.kind === 'snapshot') {
            snapshots++;
            const result = message.results.find((r) => r.split === settings.split);
            if (result && (best === null || result.accuracy > best)) best = result.accuracy;
            ctx.progress({ snapshots, best: best ?? undefined });
          }
          out.push(message);
        },
      };
    }),
});

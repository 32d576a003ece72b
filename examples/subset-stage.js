// A stage written outside rxtrain: keep only the first `size` examples of a split, e.g. to try
// an idea on 2,000 training images before spending time on 60,000. A config names this module
// under `modules:` and uses `type: subset` like any built-in stage; its settings are validated
// the same way (a typo in `size` is reported with its line and column).
import { defineStage, transform } from 'rxtrain';
import { z } from 'zod';

export const subsetStage = defineStage({
  type: 'subset',
  summary: 'keep only the first N examples of a split',
  settings: z.strictObject({
    split: z.string().default('train').describe('the split to cut'),
    size: z.int().min(1).describe('examples to keep'),
  }),
  // How its progress line reads; without this the line lists the counters as they are (kept=2000).
  describeProgress: (counters) => ({ text: `${(counters.kept ?? 0).toLocaleString('en-US')} examples kept` }),
  create: (settings, ctx) => (input) =>
    transform(input, () => {
      let kept = 0;
      return {
        next(message, out) {
          if (message.kind === 'examples' && message.split === settings.split) {
            const n = Math.min(message.count, settings.size - kept);
            if (n > 0) {
              out.push({
                ...message,
                count: n,
                splitSize: Math.min(message.splitSize ?? settings.size, settings.size),
                data: message.data.subarray(0, n * message.width),
                labels: message.labels.subarray(0, n),
              });
            }
            kept += n;
            ctx.progress({ kept });
            return;
          }
          if (message.kind === 'split-end' && message.split === settings.split) {
            out.push({ ...message, count: kept });
            return;
          }
          out.push(message);
        },
      };
    }),
});

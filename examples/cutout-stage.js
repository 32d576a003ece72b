// A stage written outside rxtrain that augments training samples, fresh in every pass: Cutout
// (DeVries & Taylor, 2017) blanks a random `size`×`size` square of each image. It sits between
// the sampler and sgd. Two rules make it exact under resume, as for the built-in augment stage:
//   - each sample draws from its own generator, seeded by (stage seed, pass, index in the pass):
//     a resumed sampler cuts its blocks elsewhere, but every sample gets what it got before;
//   - a sampler's block may index a table every block shares (`rows`): send a new block with its
//     own data, never write into the one received.
import { defineStage, Prng, sampleRow, sampleSeed, transform } from 'rxtrain';
import { z } from 'zod';

export const cutoutStage = defineStage({
  type: 'cutout',
  summary: 'blank a random square of each training image, fresh in every pass',
  settings: z.strictObject({
    size: z.int().min(1).describe('side of the square, in pixels'),
    seed: z.int().min(0).optional().describe('default: derived from the run seed'),
  }),
  wiring: () => ({
    needs: [{ token: 'samples', hint: 'place cutout after a sampler' }],
    provides: ['samples'],
  }),
  create: (settings, ctx) => (input) =>
    transform(input, () => {
      const seed = ctx.rng(settings.seed).nextUint32();
      return {
        next(message, out) {
          if (message.kind !== 'samples') return void out.push(message);
          const { count, width, shape } = message;
          const [height, cols] = shape.slice(-2); // [H, W] or [C, H, W]
          const data = new message.data.constructor(count * width); // bytes stay bytes
          const labels = new Int32Array(count);
          for (let i = 0; i < count; i++) {
            const row = sampleRow(message, i);
            data.set(message.data.subarray(row * width, (row + 1) * width), i * width);
            labels[i] = message.labels[row];
            const rng = new Prng(sampleSeed(seed, message.epoch, message.index + i));
            const top = rng.int(height - settings.size + 1);
            const left = rng.int(cols - settings.size + 1);
            for (let plane = i * width; plane < (i + 1) * width; plane += height * cols)
              for (let y = top; y < top + settings.size; y++)
                data.fill(0, plane + y * cols + left, plane + y * cols + left + settings.size);
          }
          const { rows: _shared, ...block } = message;
          out.push({ ...block, data, labels });
        },
      };
    }),
});

import { type Emitter, type Flow, transform } from '../../flow/index.js';
import { shuffleInPlace } from '../../kernels/shuffle.js';
import { ExampleStore } from '../../pipeline/exampleStore.js';
import type { Examples, FeatureTransform, Message, SampleBlock } from '../../pipeline/messages.js';
import type { StageContext } from '../../pipeline/stage.js';
import { RxtrainError } from '../../util/errors.js';
import { Prng, type PrngState } from '../../util/random.js';
import type { SamplerPosition, SamplerRestore, ShuffleSettings } from '../shuffle.js';
import { generators, holdoutSize, labelCounts, requireTransform, warnUnusedClasses } from './common.js';

/** permutation and with-replacement: hold the split, then sample from it. */
export function storeSampler(
  input: Flow<Message>,
  settings: ShuffleSettings,
  ctx: StageContext,
  restored: SamplerRestore | undefined,
): Flow<Message> {
  return transform<Message, Message>(input, () => {
    const store = new ExampleStore(settings.split);
    const { sampling: rng, holdoutSeed } = generators(settings, ctx);
    let prepared = false;
    const handOver = ctx.samplesHandedOver === true;
    let pool = new Int32Array(0);
    let held = new Int32Array(0);
    let heldSent = 0;
    let heldEnded = true;
    let latest: FeatureTransform | undefined;
    let transformReady: FeatureTransform | undefined;
    // permutation state
    let epoch = 0;
    let cursor = 0;
    let order = new Int32Array(0);
    let epochStart: PrngState = rng.snapshot();
    // with-replacement state
    let drawn = 0;

    const newEpochOrder = () => {
      epochStart = rng.snapshot();
      order = pool.slice();
      shuffleInPlace(rng, order);
    };

    const prepare = () => {
      if (store.count === 0) {
        throw new RxtrainError('E_DATA', `shuffle: no ${settings.split} examples reached the sampler`);
      }
      store.trim();
      transformReady = requireTransform(latest, settings);
      const n = store.count;
      const k = holdoutSize(settings, n);
      if (k > 0) {
        const all = new Int32Array(n);
        for (let i = 0; i < n; i++) all[i] = i;
        shuffleInPlace(new Prng(holdoutSeed), all);
        held = all.slice(0, k).sort();
        pool = all.slice(k).sort();
        heldEnded = false;
      } else {
        pool = new Int32Array(n);
        for (let i = 0; i < n; i++) pool[i] = i;
      }
      if (settings.mode === 'permutation') {
        if (restored) {
          const p = restored.position as Extract<SamplerPosition, { mode: 'permutation' }>;
          rng.restore(p.rng);
          epoch = p.epoch;
          newEpochOrder();
          cursor = p.cursor + restored.skip;
          while (cursor >= pool.length) {
            cursor -= pool.length;
            epoch++;
            newEpochOrder();
          }
        } else newEpochOrder();
      } else if (restored) {
        const p = restored.position as Extract<SamplerPosition, { mode: 'with-replacement' }>;
        rng.restore(p.rng);
        drawn = p.drawn;
        for (let i = 0; i < restored.skip; i++) {
          rng.int(pool.length);
          drawn++;
        }
      }
      ctx.progress({ population: pool.length, heldOut: held.length, mode: settings.mode });
      if (!restored)
        warnUnusedClasses(ctx, settings, labelCounts(store.labels, pool, store.classes), store.classNames);
      prepared = true;
    };

    const sendHeldOut = (out: Emitter<Message>) => {
      if (heldSent < held.length) {
        const n = Math.min(1024, held.length - heldSent);
        const data = store.allocate(n);
        const labels = new Int32Array(n);
        store.gather(held, heldSent, n, data, labels);
        const batch: Examples = {
          kind: 'examples',
          split: settings.holdout!.split,
          start: heldSent,
          count: n,
          splitSize: held.length,
          shape: store.shape,
          width: store.width,
          data,
          labels,
          classes: store.classes,
          ...(store.classNames ? { classNames: store.classNames } : {}),
          source: `${ctx.id} holdout of ${settings.split}`,
        };
        heldSent += n;
        out.push(batch);
        return;
      }
      heldEnded = true;
      out.push({ kind: 'split-end', split: settings.holdout!.split, count: held.length });
    };

    /**
     * A block of the given store rows. It carries their row numbers, not copies: the updater reads
     * each row straight from the store, which nothing else changes once sampling has begun. When
     * the context allows, the store is handed over to the updater (`SampleBlock.reusable`): the
     * held-out rows, the one other read of it, have all been copied out before the first block.
     */
    const block = (rows: Int32Array, position: SamplerPosition, index: number, ep: number): SampleBlock => {
      return {
        kind: 'samples',
        sampler: ctx.id,
        epoch: ep,
        position,
        index,
        population: pool.length,
        count: rows.length,
        width: store.width,
        shape: store.shape,
        data: store.data,
        labels: store.labels,
        rows,
        ...(handOver ? { reusable: true } : {}),
        classes: store.classes,
        ...(store.classNames ? { classNames: store.classNames } : {}),
        transform: transformReady!,
      };
    };

    return {
      next(message, out) {
        if (message.kind === 'features') latest = message.transform;
        if (message.kind === 'examples' && message.split === settings.split) store.add(message);
        else if (!(message.kind === 'split-end' && message.split === settings.split)) out.push(message);
      },
      complete() {
        prepare();
      },
      pull(out) {
        if (!prepared) return false;
        if (!heldEnded) {
          sendHeldOut(out);
          return true;
        }
        const population = pool.length;
        if (settings.mode === 'permutation') {
          if (cursor >= population) {
            epoch++;
            cursor = 0;
            newEpochOrder();
          }
          const count = Math.min(settings.blockSize, population - cursor);
          const position: SamplerPosition = { mode: 'permutation', epoch, cursor, rng: epochStart };
          out.push(block(order.slice(cursor, cursor + count), position, cursor, epoch));
          cursor += count;
        } else {
          const inEpoch = drawn % population;
          const count = Math.min(settings.blockSize, population - inEpoch);
          const position: SamplerPosition = { mode: 'with-replacement', drawn, rng: rng.snapshot() };
          const picks = new Int32Array(count);
          for (let i = 0; i < count; i++) picks[i] = pool[rng.int(population)]!;
          out.push(block(picks, position, inEpoch, Math.floor(drawn / population)));
          drawn += count;
        }
        return true;
      },
    };
  });
}

import { resolve } from 'node:path';
import { Demand, type Flow } from '../flow/index.js';
import { buildPipeline, dataStagesOnly } from '../pipeline/compose.js';
import { loadConfig } from '../pipeline/config.js';
import { EventBus, systemClock } from '../pipeline/events.js';
import type { Examples, Message } from '../pipeline/messages.js';
import { defaultCacheDir } from '../pipeline/run.js';
import { encodePng, exampleImage, halfBlocks } from '../report/exampleImage.js';
import { builtinStages } from '../stages/index.js';
import { writeFileAtomic } from '../util/atomicFile.js';
import { RxtrainError } from '../util/errors.js';
import { type Command, exactlyOne } from './command.js';

export const inspectCommand: Command = {
  name: 'inspect',
  help: `Usage: rxtrain inspect <config.yaml> --split <name> --index N [--out FILE.png] [options]

Runs the config's data stages (its source and the pure stages after it) only as far as example N
of the split, prints its label, and draws it: in the terminal with Unicode half-blocks in
greyscale, or, with --out, as an 8-bit greyscale PNG.

  --split NAME   the split, e.g. train or test
  --index N      0-based index of the example within the split
  --out FILE.png write a PNG instead of drawing in the terminal (only .png)
  --scale K      with --out, draw each pixel as a K×K square (default 8: 224×224 for MNIST)
  --set K=V      override a setting, as for run; repeatable
  --cache DIR    download cache (default $RXTRAIN_CACHE or ~/.cache/rxtrain)

In greyscale on a terminal; piped, or with NO_COLOR set, without escape codes: each pixel on
or off at half brightness.`,
  options: {
    split: { type: 'string' },
    index: { type: 'string' },
    out: { type: 'string' },
    scale: { type: 'string' },
    set: { type: 'string', multiple: true },
    cache: { type: 'string' },
  },
  async run(positionals, values, io) {
    const file = exactlyOne(positionals, 'inspect <config.yaml> --split <name> --index N');
    const split = values.split as string | undefined;
    if (!split) throw new RxtrainError('E_USAGE', 'inspect needs --split (e.g. --split train)');
    const index = wholeNumber(values.index as string | undefined, '--index');
    const scale = values.scale === undefined ? 8 : wholeNumber(values.scale as string, '--scale');
    if (scale < 1 || scale > 64) throw new RxtrainError('E_USAGE', '--scale must be between 1 and 64');
    const out = values.out as string | undefined;
    if (out !== undefined && !out.toLowerCase().endsWith('.png')) {
      throw new RxtrainError('E_USAGE', `--out ${out}: inspect writes PNG images; name the file *.png`);
    }

    const config = await loadConfig(file, {
      stages: builtinStages,
      overrides: (values.set as string[]) ?? [],
    });
    const events = new EventBus();
    events.on((e) => {
      if (e.type === 'warning') io.stderr(`rxtrain: warning: ${e.message}\n`);
    });
    const pipeline = buildPipeline(dataStagesOnly(config), {
      events,
      clock: systemClock,
      cacheDir: resolve((values.cache as string | undefined) ?? defaultCacheDir()),
      stopSignal: new AbortController().signal,
      sliceMs: 25,
    });
    const { batch, row } = await findExample(pipeline.flow, split, index);
    const image = exampleImage(batch, row);
    io.stdout(
      `${split}[${index}]: label ${batch.labels[row]}${batch.classNames ? ` ${batch.classNames[batch.labels[row]!]}` : ''} (${image.height}×${image.width}, from ${batch.source})\n`,
    );
    if (values.out) {
      const out = resolve(values.out as string);
      writeFileAtomic(out, encodePng(image, scale));
      io.stdout(`wrote ${out} (${image.width * scale}×${image.height * scale} greyscale PNG)\n`);
    } else {
      const noColor = io.env.NO_COLOR !== undefined && io.env.NO_COLOR !== '';
      // Escape codes only where a terminal will read them, not in a pipe or a file.
      io.stdout(halfBlocks(image, { color: !!io.stdoutIsTty && !noColor }));
    }
    return 0;
  },
};

function wholeNumber(text: string | undefined, option: string): number {
  if (text === undefined || !/^\d+$/.test(text)) {
    throw new RxtrainError(
      'E_USAGE',
      `${option} needs a whole number${text === undefined ? '' : `, not "${text}"`}`,
    );
  }
  return Number(text);
}

/**
 * Pull the flow one message at a time until the batch holding example `index` of `split` goes by,
 * then stop it: nothing after that example is read or decoded.
 */
function findExample(
  flow: Flow<Message>,
  split: string,
  index: number,
): Promise<{ batch: Examples; row: number }> {
  return new Promise((resolvePromise, reject) => {
    const demand = new Demand();
    const seen = new Set<string>();
    let done = false;
    const finish = (fn: () => void) => {
      if (done) return;
      done = true;
      queueMicrotask(() => subscription.unsubscribe());
      fn();
    };
    const subscription = flow(demand.requests).subscribe({
      next: (message) => {
        if (message.kind === 'examples' || message.kind === 'split-end') seen.add(message.split);
        if (message.kind === 'examples' && message.split === split && index < message.start + message.count) {
          if (index >= message.start)
            finish(() => resolvePromise({ batch: message, row: index - message.start }));
        } else if (message.kind === 'split-end' && message.split === split && index >= message.count) {
          finish(() =>
            reject(
              new RxtrainError('E_USAGE', `--index ${index}: split ${split} has ${message.count} examples`),
            ),
          );
        }
        if (!done) queueMicrotask(() => demand.request(1));
      },
      error: (error) => finish(() => reject(error)),
      complete: () =>
        finish(() =>
          reject(
            new RxtrainError(
              'E_USAGE',
              `no split "${split}" in the data (splits: ${[...seen].join(', ') || 'none'})`,
            ),
          ),
        ),
    });
    demand.request(1);
  });
}

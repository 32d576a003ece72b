import { describeArchitecture } from '../kernels/architecture.js';
import { loadModel, type Prediction } from '../pipeline/loadModel.js';
import { RxtrainError } from '../util/errors.js';
import type { Command } from './command.js';
import { readInputs } from './predictInputs.js';

export const predictCommand: Command = {
  name: 'predict',
  help: `Usage: rxtrain predict <run-dir> <input>… [--json] [--invert]

Classifies each input with the final model of a finished run (its model.json and weights.f32)
and prints, per example, the predicted label and the three most probable classes:

  digit-7.png: 7  (7 0.9991, 9 0.0004, 2 0.0002)

An input is a PNG image, an IDX file of examples (each printed as file[i]), or a directory of
them (its PNG and IDX files, by name). A PNG of any size, colour type or bit depth becomes the
model's input: grey by luma, transparent pixels black, stretched to the input's height × width
by area averaging, rounded to grey levels 0–255 — the values of an IDX image, white ink on
black as in MNIST (--invert for dark ink on a light background). An IDX file's examples must
have the model's input shape. An input that cannot be used gets one line on stderr; the others
are still classified, and the exit code is 1.

  --json     one JSON object per example on stdout (NDJSON): input, label, probabilities, top
  --invert   turn grey levels over (255 − g): for dark digits on light paper`,
  options: {
    json: { type: 'boolean' },
    invert: { type: 'boolean' },
  },
  async run(positionals, values, io) {
    const [runDir, ...inputs] = positionals;
    if (!runDir || inputs.length === 0)
      throw new RxtrainError(
        'E_USAGE',
        'usage: rxtrain predict <run-dir> <input>… (see rxtrain predict --help)',
      );
    const model = loadModel(runDir);
    const json = values.json === true;
    let failed = 0;
    let examples = 0;
    for (const item of readInputs(inputs, { shape: model.inputShape, invert: values.invert === true })) {
      if ('error' in item) {
        failed++;
        io.stderr(`rxtrain: ${item.error.code}: ${item.error.message}\n`);
        continue;
      }
      const predictions = model.predictMany(item.rows, item.count);
      for (const [i, p] of predictions.entries()) {
        const input = item.list ? `${item.input}[${i}]` : item.input;
        io.stdout(json ? `${JSON.stringify({ input, ...jsonOf(p) })}\n` : `${input}: ${line(p)}\n`);
      }
      examples += item.count;
    }
    if (!json)
      io.stderr(
        `rxtrain: ${examples} example${examples === 1 ? '' : 's'} classified by ${describeArchitecture(model.architecture)} (step ${model.step})${failed ? `; ${failed} input${failed === 1 ? '' : 's'} failed` : ''}\n`,
      );
    return failed ? 1 : 0;
  },
};

const named = (x: { label: number; name?: string }) => x.name ?? String(x.label);

/** `7  (7 0.9991, 9 0.0004, 2 0.0002)` */
function line(p: Prediction): string {
  return `${named(p)}  (${p.top.map((t) => `${named(t)} ${t.probability.toFixed(4)}`).join(', ')})`;
}

function jsonOf(p: Prediction) {
  return {
    label: p.label,
    ...(p.name ? { name: p.name } : {}),
    probabilities: p.probabilities.map((x) => Number(x.toPrecision(6))),
    top: p.top.map((t) => ({ ...t, probability: Number(t.probability.toPrecision(6)) })),
  };
}

import { resolve } from 'node:path';
import { stageModulesOf } from '../pipeline/config.js';
import { experimentJsonSchema } from '../pipeline/jsonSchema.js';
import type { StageDefinition } from '../pipeline/stage.js';
import { builtinStages } from '../stages/index.js';
import { writeFileAtomic } from '../util/atomicFile.js';
import { RxtrainError } from '../util/errors.js';
import type { Command } from './command.js';

export const schemaCommand: Command = {
  name: 'schema',
  help: `Usage: rxtrain schema [--config FILE] [--out FILE]

Prints the JSON Schema (draft-07) of experiment files, generated from the stages' own settings
schemas: give it to an editor to complete and check every key. With --config, the stages of the
user modules that config names under modules: are in it too. Point a config at it with a first
line such as

  # yaml-language-server: $schema=../schema/experiment.schema.json

(the shipped configs do). It checks keys, types and ranges; \`rxtrain validate\` also checks what
a schema cannot: that each stage gets what it needs from the stages before it, unique stage ids.

  --config FILE  a config whose user stage modules to include
  --out FILE     write the schema there instead of to stdout`,
  options: {
    config: { type: 'string', short: 'c' },
    out: { type: 'string', short: 'o' },
  },
  async run(positionals, values, io) {
    if (positionals.length)
      throw new RxtrainError('E_USAGE', 'usage: rxtrain schema [--config FILE] [--out FILE]');
    const { text, stageTypes, userTypes } = await schemaText(values.config as string | undefined);
    const out = values.out as string | undefined;
    if (!out) io.stdout(text);
    else {
      writeFileAtomic(resolve(out), text);
      io.stdout(
        `wrote ${resolve(out)} (${stageTypes} stage types${userTypes ? `, ${userTypes} from user modules` : ''})\n`,
      );
    }
    return 0;
  },
};

/** The schema as `rxtrain schema [--config FILE]` prints it (scripts/schema.ts writes the shipped ones). */
export async function schemaText(
  config?: string | readonly string[],
): Promise<{ text: string; stageTypes: number; userTypes: number }> {
  const configs = config === undefined ? [] : typeof config === 'string' ? [config] : config;
  const user: StageDefinition[] = [];
  for (const c of configs) {
    for (const d of await stageModulesOf(c)) if (!user.some((u) => u.type === d.type)) user.push(d);
  }
  // A user stage of a built-in's type replaces it, as in loadConfig.
  const stages = [...builtinStages.filter((d) => !user.some((u) => u.type === d.type)), ...user];
  const title = user.length
    ? `rxtrain experiment (built-in stages and ${user.map((d) => d.type).join(', ')})`
    : 'rxtrain experiment (built-in stages)';
  const text = `${JSON.stringify(experimentJsonSchema(stages, title), null, 2)}\n`;
  return { text, stageTypes: stages.length, userTypes: user.length };
}

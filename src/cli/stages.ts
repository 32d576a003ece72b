import { stageReference } from '../reference.js';
import { builtinStages } from '../stages/index.js';
import type { Command } from './command.js';

export const stagesCommand: Command = {
  name: 'stages',
  help: `Usage: rxtrain stages [type] [--markdown]

Prints each stage's settings with type, default and meaning, generated from its schema.`,
  options: { markdown: { type: 'boolean' } },
  async run(positionals, values, io) {
    io.stdout(stageReference(builtinStages, { type: positionals[0], markdown: !!values.markdown }));
    return 0;
  },
};

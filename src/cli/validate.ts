import './zodOneShot.js';
import { loadConfig } from '../pipeline/config.js';
import { builtinStages } from '../stages/index.js';
import { type Command, exactlyOne } from './command.js';

export const validateCommand: Command = {
  name: 'validate',
  help: `Usage: rxtrain validate <config.yaml> [--set <stageId>.<key>=<value>]…

Checks YAML syntax, every key and value of every stage, user stage modules, and that each stage
gets what it needs from the stages before it (splits, samples, a model), and reports all problems
at once as <file>:<line>:<column> <key path>: <what is wrong>. Exit 0 if valid, 2 if not.`,
  options: { set: { type: 'string', multiple: true } },
  async run(positionals, values, io) {
    const file = exactlyOne(positionals, 'validate <config.yaml>');
    const config = await loadConfig(file, {
      stages: builtinStages,
      overrides: (values.set as string[]) ?? [],
    });
    io.stdout(
      `${file}: ok (${config.stages.map((s) => (s.id === s.type ? s.id : `${s.id}:${s.type}`)).join(' -> ')})\n`,
    );
    return 0;
  },
};

/**
 * `rxtrain run` and `rxtrain resume` alone: the entry of the CommonJS bundle that bin/rxtrain.js
 * loads for these two commands with a V8 code cache (cli/cachedScript.ts), so that a run does not
 * parse and compile the ~1 MB of JavaScript it needs on every start (~80 ms of a one-step run's
 * ~0.45 s here, measured). Every other command, and these two when the bundle or the cache is
 * missing, goes through src/cli.ts as before; both dispatch the same way (cli/dispatch.ts).
 */
import type { CliIo, Command } from './cli/command.js';
import { dispatch } from './cli/dispatch.js';
import { resumeCommand } from './cli/resume.js';
import { runCommand } from './cli/run.js';
import { RxtrainError } from './util/errors.js';

export type { CliIo } from './cli/command.js';

/** The commands this entry serves: the two bin/rxtrain.js sends here (it cannot read this list
 * without loading the bundle, so it names them itself). */
export const COMMANDS: readonly string[] = [runCommand.name, resumeCommand.name];

const table: Record<string, Command> = { run: runCommand, resume: resumeCommand };

export function main(argv: readonly string[], io: CliIo): Promise<number> {
  return dispatch(argv, io, {
    find: (name) => {
      const command = table[name];
      if (!command)
        throw new RxtrainError('E_USAGE', `unknown command "${name}" (this entry serves run and resume)`);
      return { load: async () => command };
    },
    help: () => 'rxtrain run | resume: see rxtrain --help',
  });
}

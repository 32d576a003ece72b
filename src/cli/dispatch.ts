/**
 * What every way of starting the CLI does with a command line, given a table of commands: the
 * version, help, parsing the command's options strictly, running it, and turning errors into one
 * line and an exit code (0 done, 1 runtime failure, 2 usage or config error). src/cli.ts gives it
 * every command, each loaded when it runs; src/cliRun.ts (the CommonJS bundle bin/rxtrain.js loads
 * with a V8 code cache) gives it `run` and `resume`.
 */
import { ConfigError, describeError, RxtrainError } from '../util/errors.js';
import { VERSION } from '../util/version.js';
import { type CliIo, type Command, parseCommandArgs } from './command.js';

export interface CommandTable {
  /** The command called `name`; throws E_USAGE when there is none. */
  find(name: string): { load: () => Promise<Command> };
  /** `rxtrain --help`. */
  help(): string;
}

export async function dispatch(argv: readonly string[], io: CliIo, table: CommandTable): Promise<number> {
  const debug = argv.includes('--debug');
  try {
    const [name, ...rest] = argv;
    if (name === '--version' || name === '-v') {
      io.stdout(`${VERSION}\n`);
      return 0;
    }
    if (name === 'help' && rest[0] !== undefined) {
      // `rxtrain help run` is `rxtrain run --help`.
      io.stdout(`${(await table.find(rest[0]).load()).help}\n`);
      return 0;
    }
    if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
      io.stdout(`${table.help()}\n`);
      return name === undefined ? 2 : 0;
    }
    const command = await table.find(name).load();
    const { values, positionals } = parseCommandArgs(command, rest);
    if (values.help) {
      io.stdout(`${command.help}\n`);
      return 0;
    }
    return await command.run(positionals, values, io);
  } catch (error) {
    return reportError(error, io, debug);
  }
}

function reportError(error: unknown, io: CliIo, debug: boolean): number {
  if (error instanceof ConfigError) {
    io.stderr(
      `rxtrain: ${error.issues.length} problem${error.issues.length === 1 ? '' : 's'} in ${error.file}:\n`,
    );
    io.stderr(`${error.message}\n`);
    return 2;
  }
  if (error instanceof RxtrainError) {
    io.stderr(`rxtrain: ${error.code}: ${error.message}\n`);
    if (debug && error.stack) io.stderr(`${error.stack}\n`);
    return error.code === 'E_USAGE' ? 2 : 1;
  }
  io.stderr(
    `rxtrain: internal error: ${describeError(error)}${debug ? '' : ' (run with --debug for the stack trace)'}\n`,
  );
  if (debug && error instanceof Error && error.stack) io.stderr(`${error.stack}\n`);
  return 1;
}

/** The shape of one `rxtrain <command>`: its own options, parsed strictly, and a handler. */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { RxtrainError } from '../util/errors.js';

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  stderrIsTty: boolean;
  /** Whether stdout is a terminal (escape codes go there only then). */
  stdoutIsTty?: boolean;
  /** The terminal's current width when stderr is a TTY (the progress frame is cut to it). */
  stderrColumns?: () => number | undefined;
  env: NodeJS.ProcessEnv;
  /** Aborted on SIGHUP/SIGINT/SIGTERM; `reason` is the signal name. */
  signal?: AbortSignal;
}

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

export interface Command {
  name: string;
  /** Usage and option help, shown by `rxtrain <command> --help`. */
  help: string;
  options: OptionSpec;
  run(positionals: string[], values: Record<string, unknown>, io: CliIo): Promise<number>;
}

/** Options every command accepts. */
export const COMMON_OPTIONS: OptionSpec = {
  debug: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

export function parseCommandArgs(command: Command, argv: readonly string[]) {
  try {
    return parseArgs({
      args: [...argv],
      options: { ...COMMON_OPTIONS, ...command.options },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new RxtrainError(
      'E_USAGE',
      `${optionMessage(error as Error)} (see rxtrain ${command.name} --help)`,
    );
  }
}

/**
 * node:util parseArgs's message, first sentence only: its advice on positionals starting with
 * "-" quotes them oddly and is rarely what was meant (`Unknown option '--epochs'`).
 */
function optionMessage(error: Error): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return error.message.split('. ')[0]!;
  return error.message;
}

export function exactlyOne(positionals: string[], usage: string): string {
  if (positionals.length !== 1) throw new RxtrainError('E_USAGE', `usage: rxtrain ${usage}`);
  return positionals[0]!;
}

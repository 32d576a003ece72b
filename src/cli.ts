/**
 * The `rxtrain` command line: a table of commands, one file each under src/cli/. Exit codes:
 * 0 done, 1 runtime failure, 2 usage or config error, 129/130/143 stopped by SIGHUP/SIGINT/SIGTERM (after a
 * checkpoint). Progress goes to stderr, the result line to stdout; errors are one line each, with
 * a stack trace only under --debug.
 */
import type { CliIo, Command } from './cli/command.js';
import { dispatch } from './cli/dispatch.js';
import { RxtrainError } from './util/errors.js';
import { VERSION } from './util/version.js';

export type { CliIo } from './cli/command.js';

/**
 * Every command, in the order `--help` lists them. A command's module is imported only when it
 * runs, so `rxtrain run` does not load the report's or the generator's code (start-up time is
 * part of every run's wall time).
 */
export const commands: readonly { name: string; summary: string; load: () => Promise<Command> }[] = [
  {
    name: 'run',
    summary: 'run an experiment; writes runs/<name>-<timestamp>/ (or --run-dir)',
    load: async () => (await import('./cli/run.js')).runCommand,
  },
  {
    name: 'resume',
    summary: 'continue a stopped or killed run from its latest valid checkpoint',
    load: async () => (await import('./cli/resume.js')).resumeCommand,
  },
  {
    name: 'validate',
    summary: 'check a config and report every problem with line:column; runs nothing',
    load: async () => (await import('./cli/validate.js')).validateCommand,
  },
  {
    name: 'stages',
    summary: 'list the built-in stages and their settings with defaults',
    load: async () => (await import('./cli/stages.js')).stagesCommand,
  },
  {
    name: 'inspect',
    summary: "show one example of a config's data: its label, and the image in the terminal or as a PNG",
    load: async () => (await import('./cli/inspect.js')).inspectCommand,
  },
  {
    name: 'predict',
    summary: "classify PNG images or IDX examples with a finished run's model: label and top-3 probabilities",
    load: async () => (await import('./cli/predict.js')).predictCommand,
  },
  {
    name: 'report',
    summary: 'one self-contained HTML page: curves (several runs overlaid), confusion, weights, errors',
    load: async () => (await import('./cli/report.js')).reportCommand,
  },
  {
    name: 'serve',
    summary: 'a live page of every run under the given directories, updated as their logs grow',
    load: async () => (await import('./cli/serve.js')).serveCommand,
  },
  {
    name: 'schema',
    summary: 'print the JSON Schema of experiment files (with --config, its user stages too)',
    load: async () => (await import('./cli/schema.js')).schemaCommand,
  },
  {
    name: 'sweep',
    summary: 'run many trials of an experiment from a sweep file, in parallel, resumable, with ASHA',
    load: async () => (await import('./cli/sweep.js')).sweepCommand,
  },
  {
    name: 'worker',
    summary: 'take trials of sweeps queued on Redis (sweep --queue), on any machine',
    load: async () => (await import('./cli/worker.js')).workerCommand,
  },
  {
    name: 'synth',
    summary: 'write a synthetic MNIST-like dataset of any size (IDX files, .tar or .tar.gz)',
    load: async () => (await import('./cli/synth.js')).synthCommand,
  },
];

/** Commands rxtrain starts itself, left out of --help and of the unknown-command hint. */
const internalCommands: readonly { name: string; load: () => Promise<Command> }[] = [
  { name: 'trial-host', load: async () => (await import('./cli/trialHost.js')).trialHostCommand(main) },
];

function help(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return `rxtrain ${VERSION} — machine-learning experiments as streaming pipelines

Usage: rxtrain <command> [arguments] [options]

Commands:
${commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Run \`rxtrain help <command>\` (or \`rxtrain <command> --help\`) for a command's options. Every
command takes --debug (stack traces) and --help. \`rxtrain --version\` prints the version.

Exit codes: 0 done, 1 runtime failure, 2 usage or config error, 129/130/143 interrupted
(SIGHUP/SIGINT/SIGTERM, after a checkpoint).`;
}

export function main(argv: readonly string[], io: CliIo): Promise<number> {
  return dispatch(argv, io, { find, help });
}

function find(name: string): { load: () => Promise<Command> } {
  const entry = commands.find((c) => c.name === name) ?? internalCommands.find((c) => c.name === name);
  if (!entry) {
    throw new RxtrainError(
      'E_USAGE',
      `unknown command "${name}" (commands: ${commands.map((c) => c.name).join(', ')}; see rxtrain --help)`,
    );
  }
  return entry;
}

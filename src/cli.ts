/**
 * The `rxtrain` command line. Exit codes: 0 done, 1 runtime failure, 2 usage or config error,
 * 130/143 stopped by SIGINT/SIGTERM (after a checkpoint). Progress goes to stderr, the one result
 * line to stdout; errors are one line each, with a stack trace only under --debug.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from './pipeline/config.js';
import { ConfigError, describeError, RxtrainError } from './pipeline/errors.js';
import type { RxtrainEvent } from './pipeline/events.js';
import { type RunSummary, runExperiment } from './pipeline/run.js';
import { ProgressRenderer } from './progress/renderer.js';
import { stageReference } from './reference.js';
import { builtinStages } from './stages/index.js';
import { VERSION } from './version.js';

const HELP = `rxtrain ${VERSION} — machine-learning experiments as streaming pipelines

Usage:
  rxtrain run <config.yaml> [--run-dir DIR] [--set <stageId>.<key>=<value>]… [options]
  rxtrain validate <config.yaml> [--set …]
  rxtrain stages [type] [--markdown]
  rxtrain --help | --version

Commands:
  run        run an experiment; writes runs/<name>-<timestamp>/ (or --run-dir)
  validate   check a config and report every problem with line:column; runs nothing
  stages     list the built-in stages and their settings with defaults

Options:
  --set K=V      override a setting: <stageId>.<key>=<value> (value parsed as YAML),
                 or a top-level key such as seed=3; repeatable
  --run-dir DIR  where to write the run (default runs/<name>-<timestamp>)
  --runs DIR     parent of default run directories (default ./runs)
  --cache DIR    download and stage cache (default $RXTRAIN_CACHE or ~/.cache/rxtrain)
  --quiet        no progress on stderr
  --json         stream every event to stdout as NDJSON (instead of the result line)
  --debug        print stack traces
  -h, --help     this help
  -v, --version  print the version

Exit codes: 0 done, 1 runtime failure, 2 usage or config error, 130/143 interrupted.`;

const OPTIONS = {
  set: { type: 'string', multiple: true },
  'run-dir': { type: 'string' },
  runs: { type: 'string' },
  cache: { type: 'string' },
  quiet: { type: 'boolean' },
  json: { type: 'boolean' },
  debug: { type: 'boolean' },
  markdown: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  stderrIsTty: boolean;
  env: NodeJS.ProcessEnv;
  /** Aborted on SIGINT/SIGTERM; `reason` is the signal name. */
  signal?: AbortSignal;
}

export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  let debug = argv.includes('--debug');
  try {
    let parsed: ReturnType<
      typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; args: string[] }>
    >;
    try {
      parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
    } catch (error) {
      throw new RxtrainError('E_USAGE', `${(error as Error).message} (see rxtrain --help)`);
    }
    const { values, positionals } = parsed;
    debug = !!values.debug;
    const [command, ...rest] = positionals;
    if (values.version) {
      io.stdout(`${VERSION}\n`);
      return 0;
    }
    if (values.help || !command) {
      io.stdout(`${HELP}\n`);
      return command || values.help ? 0 : 2;
    }
    switch (command) {
      case 'run':
        return await runCommand(one(rest, 'run <config.yaml>'), values, io);
      case 'validate':
        return await validateCommand(one(rest, 'validate <config.yaml>'), values, io);
      case 'stages':
        io.stdout(stageReference(builtinStages, { type: rest[0], markdown: !!values.markdown }));
        return 0;
      default:
        throw new RxtrainError(
          'E_USAGE',
          `unknown command "${command}" (commands: run, validate, stages; see rxtrain --help)`,
        );
    }
  } catch (error) {
    return reportError(error, io, debug);
  }
}

function one(args: string[], usage: string): string {
  if (args.length !== 1) throw new RxtrainError('E_USAGE', `usage: rxtrain ${usage}`);
  return args[0]!;
}

type Values = {
  [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K] extends { multiple: true }
    ? string[]
    : (typeof OPTIONS)[K]['type'] extends 'boolean'
      ? boolean
      : string;
};

async function validateCommand(file: string, values: Values, io: CliIo): Promise<number> {
  const config = await loadConfig(file, { stages: builtinStages, overrides: values.set ?? [] });
  io.stdout(
    `${file}: ok (${config.stages.map((s) => (s.id === s.type ? s.id : `${s.id}:${s.type}`)).join(' -> ')})\n`,
  );
  return 0;
}

async function runCommand(file: string, values: Values, io: CliIo): Promise<number> {
  const config = await loadConfig(file, { stages: builtinStages, overrides: values.set ?? [] });
  const noColor = io.env.NO_COLOR !== undefined && io.env.NO_COLOR !== '';
  const renderer = values.quiet
    ? undefined
    : new ProgressRenderer(io.stderr, {
        tty: io.stderrIsTty,
        color: io.stderrIsTty && !noColor,
        intervalMs: 2000,
      });
  const onEvent = (event: RxtrainEvent) => {
    renderer?.onEvent(event);
    if (values.json) io.stdout(`${JSON.stringify(event)}\n`);
  };
  let summary: RunSummary;
  try {
    summary = await runExperiment({
      config,
      runDir: values['run-dir'],
      runsDir: values.runs,
      cacheDir: values.cache,
      signal: io.signal,
      onEvent,
    });
  } finally {
    renderer?.close();
  }
  if (!values.json) io.stdout(`${resultLine(summary)}\n`);
  if (summary.status === 'interrupted') return io.signal?.reason === 'SIGTERM' ? 143 : 130;
  return 0;
}

export function resultLine(s: RunSummary): string {
  const scores = Object.entries(s.splits)
    .map(([split, r]) => `${split} accuracy ${r.accuracy.toFixed(4)} (loss ${r.loss.toFixed(4)})`)
    .join(', ');
  return `${s.status} ${s.name}: ${scores || 'no evaluation'} after ${s.steps.toLocaleString('en-US')} steps (${s.epochs.toFixed(2)} epochs) in ${(s.durationMs / 1000).toFixed(1)}s; run dir ${s.runDir}`;
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

import './zodOneShot.js';
import type { ExperimentConfig } from '../pipeline/config.js';
import { loadConfigCached } from '../pipeline/configCache.js';
import type { RxtrainEvent } from '../pipeline/events.js';
import { type RunSummary, runExperiment } from '../pipeline/run.js';
import { defaultCacheDir } from '../pipeline/runDir.js';
import { interruptedExitCode } from '../pipeline/runSummary.js';
import type { StageDefinition } from '../pipeline/stage.js';
import { ProgressRenderer } from '../progress/renderer.js';
import { builtinStages } from '../stages/index.js';
import { count } from '../util/format.js';
import { type CliIo, type Command, exactlyOne } from './command.js';

export const runCommand: Command = {
  name: 'run',
  help: `Usage: rxtrain run <config.yaml> [--run-dir DIR] [--set <stageId>.<key>=<value>]… [options]

  --set K=V      override a setting: <stageId>.<key>=<value> (the value is parsed as YAML),
                 or a top-level key such as seed=3; repeatable
  --run-dir DIR  where to write the run (default runs/<name>-<timestamp>)
  --force        with --run-dir: replace whatever run is there (default: refuse, saying how to
                 resume it)
  --runs DIR     parent of default run directories (default ./runs)
  --cache DIR    download and stage cache (default $RXTRAIN_CACHE or ~/.cache/rxtrain)
  --quiet        no progress on stderr
  --json         stream every event to stdout as NDJSON (instead of the result line)
  --debug        print stack traces`,
  options: {
    set: { type: 'string', multiple: true },
    'run-dir': { type: 'string' },
    force: { type: 'boolean' },
    runs: { type: 'string' },
    cache: { type: 'string' },
    quiet: { type: 'boolean' },
    json: { type: 'boolean' },
  },
  async run(positionals, values, io) {
    const file = exactlyOne(positionals, 'run <config.yaml>');
    const config = await loadConfigCached(file, {
      stages: builtinStages,
      overrides: (values.set as string[]) ?? [],
      cacheDir: (values.cache as string | undefined) ?? defaultCacheDir(),
    });
    const summary = await runWithProgress(io, values, stagesOf(config), (onEvent) =>
      runExperiment({
        config,
        runDir: values['run-dir'] as string | undefined,
        runsDir: values.runs as string | undefined,
        replace: !!values.force,
        cacheDir: values.cache as string | undefined,
        signal: io.signal,
        onEvent,
      }),
    );
    return exitCodeOf(summary, io);
  },
};

/** The stage definitions a run's progress reads: the built-ins and the config's user stages. */
export function stagesOf(config: ExperimentConfig | undefined): readonly StageDefinition[] {
  return [...builtinStages, ...(config?.stages.map((s) => s.definition) ?? [])];
}

/**
 * Drive a run with the progress renderer on stderr (and --json events on stdout); `stages` are the
 * definitions whose `describeProgress` draws each stage's line.
 */
export async function runWithProgress(
  io: CliIo,
  values: Record<string, unknown>,
  stages: readonly StageDefinition[],
  start: (onEvent: (event: RxtrainEvent) => void) => Promise<RunSummary>,
): Promise<RunSummary> {
  // no-color.org: NO_COLOR present and not empty turns colour off (cursor movement stays).
  const noColor = io.env.NO_COLOR !== undefined && io.env.NO_COLOR !== '';
  const renderer = values.quiet
    ? undefined
    : new ProgressRenderer(io.stderr, {
        stages,
        tty: io.stderrIsTty,
        color: io.stderrIsTty && !noColor,
        intervalMs: 2000,
        columns: io.stderrColumns,
      });
  const onEvent = (event: RxtrainEvent) => {
    renderer?.onEvent(event);
    if (values.json) io.stdout(`${JSON.stringify(event)}\n`);
  };
  try {
    const summary = await start(onEvent);
    if (!values.json) io.stdout(`${resultLine(summary)}\n`);
    return summary;
  } finally {
    renderer?.close();
  }
}

export function exitCodeOf(summary: RunSummary, io: CliIo): number {
  if (summary.status === 'interrupted') return interruptedExitCode(io.signal);
  return summary.status === 'completed' ? 0 : 1;
}

const STOPS: Record<NonNullable<RunSummary['stop']>['reason'], string> = {
  epochs: 'every pass done',
  steps: 'step cap reached',
  'early-stop': 'stopped early',
  input: 'the samples ran out',
  signal: 'stopped by',
  error: 'failed',
};

/**
 * `completed mnist-logreg: test accuracy 0.9251 (loss 0.2671) at step 4,690; best test.accuracy
 * 0.9266 at step 3,500; every pass done after 4,690 steps (5.00 epochs) in 1.4s; run dir …`
 */
export function resultLine(s: RunSummary): string {
  const n = count;
  const scores = Object.entries(s.splits)
    .map(
      ([split, r]) =>
        `${split} accuracy ${r.accuracy.toFixed(4)} (loss ${r.loss.toFixed(4)})${r.step !== s.steps ? ` at step ${n(r.step)}` : ''}`,
    )
    .join(', ');
  const best = s.best ? `; best ${s.best.metric} ${s.best.value.toFixed(4)} at step ${n(s.best.step)}` : '';
  const stop =
    s.stop && s.stop.reason !== 'error'
      ? `; ${STOPS[s.stop.reason]}${s.stop.reason === 'signal' ? ` ${s.stop.detail}` : s.stop.detail ? ` (${s.stop.detail})` : ''}`
      : '';
  return `${s.status} ${s.name}: ${scores || 'no evaluation'}${best}${stop} after ${n(s.steps)} steps (${s.epochs.toFixed(2)} epochs) in ${(s.durationMs / 1000).toFixed(1)}s; run dir ${s.runDir}`;
}

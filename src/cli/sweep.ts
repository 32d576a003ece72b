import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultCacheDir } from '../pipeline/run.js';
import { SweepProgress } from '../progress/sweepProgress.js';
import { probeRedis } from '../queue/connection.js';
import { queueNameOf } from '../queue/queueKeys.js';
import { parseRedisUrl, type RedisTarget } from '../queue/redisUrl.js';
import { openRemoteLauncher, type RemoteLauncher } from '../queue/remoteLauncher.js';
import { builtinStages } from '../stages/index.js';
import { openSweep } from '../sweep/openSweep.js';
import { planSweep } from '../sweep/plan.js';
import { runSweep } from '../sweep/runSweep.js';
import { describePoint } from '../sweep/searchSpace.js';
import type { SweepEvent } from '../sweep/sweepEvents.js';
import { loadSweep, type SweepSpec } from '../sweep/sweepFile.js';
import { readState, SWEEP_FILES } from '../sweep/sweepState.js';
import type { SweepSummary } from '../sweep/sweepSummary.js';
import { RxtrainError } from '../util/errors.js';
import { duration } from '../util/format.js';
import type { CliIo, Command } from './command.js';
import { stagesOf } from './run.js';

/** bin/rxtrain.js, from dist/src/cli/: how each trial process is started. */
const BIN = fileURLToPath(new URL('../../../bin/rxtrain.js', import.meta.url));

export const sweepCommand: Command = {
  name: 'sweep',
  help: `Usage: rxtrain sweep <sweep.yaml> [--parallel N] [--sweep-dir DIR] [--set <stageId>.<key>=<value>]… [options]
       rxtrain sweep resume <sweep-dir> [--parallel N] [options]

Runs the trials of a sweep file (see docs/sweeps.md) as separate rxtrain processes, at most N at
once, all sharing the data cache. Each trial is an ordinary run directory, <sweep-dir>/trials/<id>,
its id a short hash of its resolved config. The sweep's state is kept in <sweep-dir>/sweep.json:
running the same command again, or \`sweep resume\`, after a crash or Ctrl-C runs no finished
trial again and resumes interrupted ones from their checkpoints. A search space that no longer
matches the sweep directory's is an error, unless --extend adds the new trials to it.

  --parallel N    trials at once (default: the number of CPUs, ${availableParallelism()} here; with
                  --queue, trials queued or running at once, default all of them, or the CPUs
                  here with ASHA: set it to the workers' total concurrency)
  --queue URL     run the trials on \`rxtrain worker\`s anywhere, through BullMQ on the Redis at
                  redis://HOST:PORT[/DB]; the sweep directory is written here as for a local sweep
                  (and records the URL: \`sweep resume\` follows the same queue)
  --sweep-dir DIR where the sweep lives (default sweeps/<name>)
  --set K=V       override a setting of the base experiment for every trial; repeatable
  --cache DIR     download and stage cache shared by the trials (default $RXTRAIN_CACHE or ~/.cache/rxtrain)
  --extend        add the trials of a grown search space to an existing sweep directory
  --fail-fast     stop at the first failed trial (running trials checkpoint and stop)
  --dry-run       validate and list the trials; run nothing
  --quiet         no progress on stderr
  --json          stream the sweep's events to stdout as NDJSON (instead of the result line)

Exit codes: 0 every trial done (or stopped early by ASHA), 1 a trial failed, 2 usage or config
error, 130/143 interrupted (SIGINT/SIGTERM; resume later).`,
  options: {
    parallel: { type: 'string', short: 'j' },
    'sweep-dir': { type: 'string' },
    set: { type: 'string', multiple: true },
    cache: { type: 'string' },
    extend: { type: 'boolean' },
    'fail-fast': { type: 'boolean' },
    'dry-run': { type: 'boolean' },
    quiet: { type: 'boolean' },
    json: { type: 'boolean' },
    queue: { type: 'string' },
  },
  async run(positionals, values, io) {
    const parallel = values.parallel === undefined ? undefined : parallelOf(values.parallel);
    if (positionals[0] === 'resume' && positionals.length === 2) {
      const dir = resolve(positionals[1]!);
      const state = readState(dir);
      if (!state)
        throw new RxtrainError('E_USAGE', `${dir}: not a sweep directory (no ${SWEEP_FILES.state})`);
      if (values.set || values['sweep-dir'] || values.extend)
        throw new RxtrainError(
          'E_USAGE',
          'sweep resume takes the sweep as recorded: no --set, --sweep-dir or --extend',
        );
      const copy = join(dir, SWEEP_FILES.file);
      if (!existsSync(copy))
        throw new RxtrainError('E_RESUME', `${copy}: missing (the sweep file the sweep was started with)`);
      const spec = await loadSweep(state.sweepFile, {
        stages: builtinStages,
        overrides: state.overrides,
        text: readFileSync(copy, 'utf8'),
        inlineBaseFile: () => join(dir, SWEEP_FILES.base),
      });
      return drive(spec, dir, parallel, values, io);
    }
    if (positionals.length !== 1)
      throw new RxtrainError(
        'E_USAGE',
        'usage: rxtrain sweep <sweep.yaml> | rxtrain sweep resume <sweep-dir>',
      );
    const dirOf = (name: string) =>
      resolve((values['sweep-dir'] as string | undefined) ?? join('sweeps', name));
    const spec = await loadSweep(positionals[0]!, {
      stages: builtinStages,
      overrides: (values.set as string[] | undefined) ?? [],
      inlineBaseFile: (name) => join(dirOf(name), SWEEP_FILES.base),
    });
    return drive(spec, dirOf(spec.name), parallel, values, io);
  },
};

function parallelOf(text: unknown): number {
  if (text === undefined) return availableParallelism();
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1)
    throw new RxtrainError('E_USAGE', `--parallel: expected a whole number ≥ 1, got "${text}"`);
  return n;
}

async function drive(
  spec: SweepSpec,
  dir: string,
  parallelGiven: number | undefined,
  values: Record<string, unknown>,
  io: CliIo,
): Promise<number> {
  const plan = await planSweep(spec);
  if (values['dry-run']) {
    for (const t of plan.trials)
      io.stdout(
        `${t.id}  ${describePoint(t.params, plan.varying)}${t.invalid ? `  (fails: ${t.invalid})` : ''}\n`,
      );
    const merged = plan.duplicates
      ? ` (${plan.duplicates} duplicate${plan.duplicates === 1 ? '' : 's'} merged)`
      : '';
    io.stdout(
      `${plan.trials.length} trials${merged}; sweep dir ${dir}${existsSync(join(dir, SWEEP_FILES.state)) ? ' (exists)' : ''}\n`,
    );
    return 0;
  }
  const target = queueOf(values.queue, dir);
  // An unreachable Redis is one line naming it, before the sweep directory is touched.
  if (target) for (const w of (await probeRedis(target)).warnings) io.stderr(`rxtrain: warning: ${w}\n`);
  const parallel =
    parallelGiven ?? (target && !spec.scheduler ? Math.max(1, plan.trials.length) : parallelOf(undefined));
  const opened = openSweep(spec, plan, dir, { extend: !!values.extend });
  if (target) opened.state.queue = target.shown;
  let launcher: RemoteLauncher | undefined;
  let finished = false;
  const noColor = io.env.NO_COLOR !== undefined && io.env.NO_COLOR !== '';
  const progress = values.quiet
    ? undefined
    : new SweepProgress(io.stderr, {
        stages: stagesOf(spec.baseConfig),
        tty: io.stderrIsTty,
        color: io.stderrIsTty && !noColor,
        intervalMs: 2000,
        columns: io.stderrColumns,
      });
  try {
    if (target) launcher = await remoteLauncher(target, spec, dir, opened.state, io);
    const outcome = await runSweep({
      spec,
      sweepDir: dir,
      state: opened.state,
      fresh: opened.fresh,
      resumed: opened.resumed,
      parallel,
      cacheDir: resolve((values.cache as string | undefined) ?? defaultCacheDir()),
      command: [process.execPath, ...process.execArgv, BIN],
      env: io.env,
      failFast: !!values['fail-fast'],
      signal: io.signal,
      ...(launcher ? { launcher } : {}),
      onEvent: (e: SweepEvent) => {
        progress?.onSweepEvent(e);
        if (values.json) io.stdout(`${JSON.stringify(e)}\n`);
      },
      onTrialEvent: progress?.onTrialEvent,
    });
    if (!values.json) io.stdout(`${resultLine(outcome.status, outcome.summary)}\n`);
    finished = outcome.status !== 'interrupted';
    return outcome.exitCode;
  } finally {
    await launcher?.close(finished);
    progress?.close();
    opened.lock.release();
  }
}

export function resultLine(status: string, s: SweepSummary): string {
  const counts = Object.entries(s.counts)
    .map(([k, n]) => `${n} ${k}`)
    .join(', ');
  const best = s.best
    ? `best ${s.metric} ${s.best.value.toFixed(4)}: trial ${s.best.trial} (${describePoint(s.best.params, s.varying)})`
    : 'no completed trial';
  return `${status} sweep ${s.name}: ${s.planned} trials (${counts}), ${duration(s.trialMs)} of trial time; ${best}; sweep dir ${s.sweepDir}`;
}

/**
 * The Redis of `--queue`, or the one a queued sweep recorded: resumed without --queue, it goes on
 * following its jobs rather than running the same trials here as well.
 */
function queueOf(given: unknown, dir: string): RedisTarget | undefined {
  if (typeof given === 'string') return parseRedisUrl(given);
  const recorded = existsSync(join(dir, SWEEP_FILES.state)) ? readState(dir)?.queue : undefined;
  if (recorded === undefined) return undefined;
  if (recorded.includes('***'))
    throw new RxtrainError(
      'E_USAGE',
      `${dir}: this sweep's trials are queued on ${recorded}; pass --queue with its password`,
    );
  return parseRedisUrl(recorded);
}

function remoteLauncher(
  target: RedisTarget,
  spec: SweepSpec,
  dir: string,
  state: { name: string; created: string },
  io: CliIo,
): Promise<RemoteLauncher> {
  return openRemoteLauncher({
    target,
    queue: queueNameOf(state, dir),
    base: { file: spec.base.file, text: spec.base.text },
    onWarning: (message) => io.stderr(`rxtrain: warning: ${message}\n`),
  });
}

import { join } from 'node:path';
import { loadConfig } from '../pipeline/config.js';
import { resumeExperiment } from '../pipeline/resume.js';
import { builtinStages } from '../stages/index.js';
import { type Command, exactlyOne } from './command.js';
import { exitCodeOf, runWithProgress, stagesOf } from './run.js';

export const resumeCommand: Command = {
  name: 'resume',
  help: `Usage: rxtrain resume <run-dir> [--cache DIR] [--allow-changed-data] [--quiet] [--json] [--debug]

Continues the run in <run-dir> with the config it was started with (config.yaml there; a changed
config is refused) from the newest checkpoint that verifies; newer ones that are corrupt or
truncated are set aside as *.invalid with a warning. events.ndjson is cut where that checkpoint
was taken, so no step appears twice, and a "resumed" event marks the join. With no valid
checkpoint the run starts again in the same directory. A completed run is left as it is.

  --cache DIR    download and stage cache (default $RXTRAIN_CACHE or ~/.cache/rxtrain)
  --allow-changed-data
                 go on although the data or a stage module changed since the checkpoint
                 (refused by default: the resumed run would not be the one that was started)
  --quiet        no progress on stderr
  --json         stream every event to stdout as NDJSON (instead of the result line)
  --debug        print stack traces

Exit codes as for run: 0 done, 1 failure, 2 usage, 129/130/143 interrupted again
(SIGHUP/SIGINT/SIGTERM).`,
  options: {
    cache: { type: 'string' },
    'allow-changed-data': { type: 'boolean' },
    quiet: { type: 'boolean' },
    json: { type: 'boolean' },
  },
  async run(positionals, values, io) {
    const runDir = exactlyOne(positionals, 'resume <run-dir>');
    let alreadyCompleted = false;
    // Only for the progress lines of the run's user stages: a config that does not load is for
    // resumeExperiment to report, in its own words.
    const config = await loadConfig(join(runDir, 'config.yaml'), { stages: builtinStages }).catch(
      () => undefined,
    );
    const summary = await runWithProgress(io, values, stagesOf(config), async (onEvent) => {
      const result = await resumeExperiment(runDir, {
        stages: builtinStages,
        cacheDir: values.cache as string | undefined,
        allowChangedData: !!values['allow-changed-data'],
        signal: io.signal,
        onEvent,
      });
      alreadyCompleted = !!result.alreadyCompleted;
      return result;
    });
    if (alreadyCompleted) {
      io.stderr(`rxtrain: ${summary.runDir} had already completed; nothing was run\n`);
    }
    return exitCodeOf(summary, io);
  },
};

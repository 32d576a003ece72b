/**
 * The trials of a sweep: each point of the search space becomes the base experiment with `fixed`,
 * the command line's `--set` and the point's values applied as overrides, validated here exactly as
 * the trial's own `rxtrain run` will validate it. A trial's id is a short hash of that resolved
 * config (the run's own `configHash`), so the same experiment always gets the same id and run
 * directory: points that resolve to one experiment are one trial, and a sweep started again finds
 * its trials where it left them.
 */
import { createHash } from 'node:crypto';
import { loadConfig } from '../pipeline/config.js';
import { configHash } from '../pipeline/run.js';
import { ConfigError, describeError } from '../util/errors.js';
import { gridPoints, type Point, randomPoints, varyingKeys } from './searchSpace.js';
import { overrideOf, type SweepSpec } from './sweepFile.js';

/** Hex digits of a trial id: 40 bits, so a collision in a sweep of 10,000 trials is ~1 in 10^5. */
export const TRIAL_ID_LENGTH = 10;

export interface PlannedTrial {
  id: string;
  /** Position in the plan (the order trials start in). */
  index: number;
  params: Point;
  /** The `--set` overrides of the trial's `rxtrain run`, in order. */
  overrides: string[];
  /** Why the trial's config does not validate (a value a stage rejects): it fails without running. */
  invalid?: string;
}

export interface SweepPlan {
  trials: PlannedTrial[];
  /** Parameters whose value differs between trials. */
  varying: string[];
  /** Points that resolved to a config already planned. */
  duplicates: number;
}

export async function planSweep(spec: SweepSpec): Promise<SweepPlan> {
  const points =
    spec.method === 'grid'
      ? gridPoints(spec.parameters)
      : randomPoints(spec.parameters, spec.count!, spec.seed);
  const trials: PlannedTrial[] = [];
  const seen = new Set<string>();
  let duplicates = 0;
  for (const params of points) {
    const trial = await planTrial(spec, params, trials.length);
    if (seen.has(trial.id)) {
      duplicates++;
      continue;
    }
    seen.add(trial.id);
    trials.push(trial);
  }
  return { trials, varying: varyingKeys(spec.parameters, points), duplicates };
}

async function planTrial(spec: SweepSpec, params: Point, index: number): Promise<PlannedTrial> {
  const own = Object.entries(params).map(([k, v]) => overrideOf(k, v));
  const overrides = [...spec.fixed, ...spec.cliOverrides, ...own];
  try {
    const config = await loadConfig(spec.base.file, { stages: spec.stages, overrides, text: spec.base.text });
    return { id: configHash(config).slice(0, TRIAL_ID_LENGTH), index, params, overrides };
  } catch (error) {
    // No resolved config: the id hashes what would have been run instead.
    const id = createHash('sha256')
      .update(`invalid\n${spec.base.text}\n${overrides.join('\n')}`)
      .digest('hex')
      .slice(0, TRIAL_ID_LENGTH);
    return { id, index, params, overrides, invalid: invalidLine(error) };
  }
}

/** A config error as one line, naming the override that caused it: `sgd.lr="fast": expected number…`. */
function invalidLine(error: unknown): string {
  if (!(error instanceof ConfigError)) return describeError(error);
  const issues = error.issues.map(
    (i) => `${i.origin ? `${i.origin.replace(/^--set /, '')}: ` : ''}${i.path}: ${i.message}`,
  );
  return `E_CONFIG: ${issues.join('; ')}`;
}

/**
 * Phases 5 and 6 of sweep validation, against the base experiment as every trial shares it: each
 * parameter names a stage setting (`<stageId>.<key>`) or a top-level key; the metric's split is
 * evaluated; and ASHA finds what it works with — evaluations of that split at every rung and a
 * checkpoint on SIGTERM, so that a trial it stops can be resumed. Nothing here names a stage type:
 * an evaluator is a stage that asks for model snapshots and needs the split's examples.
 */
import type { ExperimentConfig, ResolvedStage } from '../pipeline/config.js';
import { experimentSchema, suggest } from '../pipeline/config.js';
import type { Locator } from '../pipeline/configLocator.js';
import type { StageDefinition } from '../pipeline/stage.js';
import type { ConfigIssue } from '../util/errors.js';
import type { Parameter } from './searchSpace.js';
import type { SweepFileSettings } from './sweepSchema.js';

const TOP_LEVEL = Object.keys(experimentSchema.shape).filter((k) => k !== 'stages');

export function checkBaseFits(
  config: ExperimentConfig,
  parameters: readonly Parameter[],
  settings: SweepFileSettings,
  locate: Locator,
  keysOnly = false,
): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const p of parameters) {
    const problem = keyProblem(config, p.key);
    if (problem)
      issues.push({
        path: `parameters.${p.key}`,
        message: problem,
        ...locate.keyPosition(['parameters'], p.key),
      });
  }

  if (keysOnly) return issues;

  const split = settings.metric.split('.')[0]!;
  const evaluators = config.stages.filter((s) => evaluates(s, split));
  const metricAt = locate.at(['metric'], '');
  if (evaluators.length === 0) {
    const all = config.stages.flatMap((s) => evaluatedSplits(s));
    issues.push({
      ...metricAt,
      message: `no stage of the base evaluates the split "${split}" (evaluated: ${all.join(', ') || 'none'})${
        split === 'val'
          ? '; hold one out with shuffle.holdout and add val to evaluate.splits, e.g. in fixed'
          : ''
      }`,
    });
    return issues;
  }

  const asha = settings.scheduler;
  if (!asha) return issues;
  const every = Math.max(0, ...evaluators.map((s) => s.definition.snapshots?.(s.settings)?.every ?? 0));
  if (every === 0)
    issues.push(
      locate.at(
        ['scheduler'],
        `ASHA compares trials at rungs, so it needs periodic evaluations of "${split}"; the evaluator runs only at the start and the end (set its every)`,
      ),
    );
  else if (
    asha.resource === 'steps' &&
    (!Number.isInteger(asha.minResource) || asha.minResource % every !== 0)
  )
    issues.push(
      locate.at(
        ['scheduler', 'minResource'],
        `rungs in steps must fall on evaluations: minResource must be a multiple of the evaluator's every (${every}), got ${asha.minResource}`,
      ),
    );
  if (asha.maxResource !== undefined && asha.maxResource <= asha.minResource)
    issues.push(
      locate.at(['scheduler', 'maxResource'], `expected more than minResource (${asha.minResource})`),
    );
  if (!config.checkpoint.onSignal)
    issues.push(
      locate.at(
        ['scheduler'],
        'ASHA stops trials with SIGTERM and resumes the promising ones from that checkpoint: the base needs checkpoint.onSignal: true',
      ),
    );
  return issues;
}

/** Why `key` names no setting of the base, or undefined when it does. */
function keyProblem(config: ExperimentConfig, key: string): string | undefined {
  const [head, next] = key.split('.');
  const ids = config.stages.map((s) => s.id);
  const stage = config.stages.find((s) => s.id === head);
  if (stage) {
    if (next === undefined) return `name a setting of ${head}: ${head}.<key>`;
    const keys = settingKeys(stage.definition);
    if (keys.length === 0 || keys.includes(next)) return undefined;
    const hint = suggest(next, keys);
    return `${head}${stage.type === head ? '' : ` (a ${stage.type} stage)`} has no setting "${next}"${hint ? ` (did you mean "${hint}"?)` : ''}; settings: ${keys.join(', ')}`;
  }
  if (TOP_LEVEL.includes(head!)) return undefined;
  const hint = suggest(head!, [...ids, ...TOP_LEVEL]);
  return `no stage with id "${head}"${hint ? ` (did you mean "${hint}"?)` : ''} and no such top-level key; stage ids: ${ids.join(', ')}`;
}

/** The keys of a stage's settings schema, when it is a zod object (else none are known). */
function settingKeys(definition: StageDefinition): string[] {
  let s = definition.settings as unknown as {
    shape?: object;
    _zod?: { def?: { innerType?: unknown; in?: unknown } };
  };
  for (let i = 0; i < 10 && s && !s.shape; i++) {
    const next = s._zod?.def?.innerType ?? s._zod?.def?.in;
    if (!next) break;
    s = next as typeof s;
  }
  return s?.shape ? Object.keys(s.shape) : [];
}

function evaluatedSplits(stage: ResolvedStage): string[] {
  if (!stage.definition.snapshots?.(stage.settings)) return [];
  const needs = stage.definition.wiring?.(stage.settings).needs ?? [];
  return needs.flatMap((n) => (n.token.startsWith('split:') ? [n.token.slice('split:'.length)] : []));
}

function evaluates(stage: ResolvedStage, split: string): boolean {
  return evaluatedSplits(stage).includes(split);
}

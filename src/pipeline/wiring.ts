/**
 * Phase 6 of config validation: across stages. Every stage's needs must be provided by a stage
 * before it, as the stages declare them (`StageDefinition.wiring`), and the checkpoint policy must
 * be able to do what it asks. Both catch configs whose every key is valid but which would fail, or
 * silently do nothing, only once training has run.
 *
 * Nothing here names a stage type: it works from the declarations alone. A stage without `wiring`
 * needs and provides nothing and passes on what it receives. What a stage provides stays available
 * to every stage after it.
 */
import type { ConfigIssue } from '../util/errors.js';
import type { CheckpointPolicy } from './checkpoints.js';
import { type Locator, originOf, suggest } from './configLocator.js';
import type { ResolvedStage } from './experimentSchema.js';
import type { StageWiring, WiringNeed } from './stage.js';

/**
 * Every need without an earlier provider, located at the settings key it comes from (else at the
 * stage). `stages` holds one entry per stage of the file, undefined where the stage did not
 * validate: what such a stage would provide is unknown, so nothing after it is reported missing.
 */
export function checkWiring(
  stages: readonly (ResolvedStage | undefined)[],
  locate: Locator,
  overridden: Map<string, string>,
): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  // The declarations up to the first stage that did not validate, or whose wiring() failed.
  const declared: StageWiring[] = [];
  for (const [i, stage] of stages.entries()) {
    if (!stage) break;
    const wiring = declaredWiring(stage, i, locate, issues);
    if (!wiring) break;
    declared.push(wiring);
  }
  const provided: string[] = [];
  for (const [i, wiring] of declared.entries()) {
    const stage = stages[i]!;
    for (const need of wiring.needs ?? []) {
      if (provided.includes(need.token)) continue;
      const path = ['stages', i, ...(need.key ?? [])];
      const later = declared.findIndex((w, j) => j > i && w.provides?.includes(need.token));
      const laterStage = later >= 0 ? { index: later, stage: stages[later]! } : undefined;
      issues.push({
        ...locate.at(path, unprovided(need, stage, provided, laterStage)),
        ...overrideOf(overridden, path),
      });
    }
    for (const token of wiring.provides ?? []) if (!provided.includes(token)) provided.push(token);
  }
  return issues;
}

/** `keepBest` picks among periodic checkpoints; with none it keeps nothing but the final one. */
export function checkCheckpointPolicy(
  policy: CheckpointPolicy,
  stages: readonly (ResolvedStage | undefined)[],
  locate: Locator,
  overridden: Map<string, string>,
): ConfigIssue[] {
  if (policy.keepBest === null) return [];
  const path = ['checkpoint', 'keepBest'];
  const issue = (message: string) => [{ ...locate.at(path, message), ...originOf(overridden, path) }];
  if (policy.every === 0 && policy.everySeconds === 0) {
    return issue(
      `keeping the best checkpoint needs checkpoints to choose from: set checkpoint.every or ` +
        `checkpoint.everySeconds (both are 0, so only the final checkpoint is taken)`,
    );
  }
  // The metric's split must be one an evaluator scores (a stage that provides `metric:<split>`).
  // Unknown when a stage did not validate: its errors are reported already.
  if (stages.some((s) => s === undefined)) return [];
  const split = policy.keepBest.split('.')[0]!;
  const scored = stages.flatMap((s) =>
    (safeWiring(s!)?.provides ?? []).filter((t) => t.startsWith('metric:')).map((t) => t.slice(7)),
  );
  if (scored.includes(split)) return [];
  const hint = suggest(split, scored);
  return issue(
    `no stage evaluates a "${split}" split${hint ? ` (did you mean "${hint}"?)` : ''}; evaluated: ${scored.join(', ') || 'none'}`,
  );
}

function safeWiring(stage: ResolvedStage): StageWiring | undefined {
  try {
    return stage.definition.wiring?.(stage.settings);
  } catch {
    return undefined;
  }
}

/** A stage's declaration, checked for shape: a user stage's `wiring` is code we did not write. */
function declaredWiring(
  stage: ResolvedStage,
  index: number,
  locate: Locator,
  issues: ConfigIssue[],
): StageWiring | undefined {
  let wiring: StageWiring | undefined;
  try {
    wiring = stage.definition.wiring?.(stage.settings) ?? {};
  } catch (error) {
    issues.push(
      locate.at(['stages', index], `stage "${stage.type}": wiring() failed: ${(error as Error).message}`),
    );
    return undefined;
  }
  const needsOk =
    wiring.needs === undefined ||
    (Array.isArray(wiring.needs) && wiring.needs.every((n) => typeof n?.token === 'string'));
  const providesOk =
    wiring.provides === undefined ||
    (Array.isArray(wiring.provides) && wiring.provides.every((p) => typeof p === 'string'));
  if (needsOk && providesOk) return wiring;
  issues.push(
    locate.at(
      ['stages', index],
      `stage "${stage.type}": wiring() must return { needs?: { token: string }[], provides?: string[] }`,
    ),
  );
  return undefined;
}

/**
 * `split "val" is produced by no stage before evaluate (produced: train, test; add shuffle.holdout
 * to hold one out)`: what is missing, what the stages before do produce, and what would help.
 */
function unprovided(
  need: WiringNeed,
  stage: ResolvedStage,
  provided: readonly string[],
  later: { index: number; stage: ResolvedStage } | undefined,
): string {
  const colon = need.token.indexOf(':');
  // `kind:name` tokens are listed by name among their own kind (the splits); others by token.
  const kind = colon > 0 ? need.token.slice(0, colon + 1) : undefined;
  const name = kind ? need.token.slice(kind.length) : need.token;
  const candidates = kind
    ? provided.filter((t) => t.startsWith(kind)).map((t) => t.slice(kind.length))
    : provided;
  const what = kind ? `${kind.slice(0, -1)} "${name}"` : `"${name}"`;
  const hint = suggest(name, candidates);
  const notes = [
    ...(hint ? [`did you mean "${hint}"?`] : []),
    `produced: ${candidates.join(', ') || 'none'}`,
    later
      ? `${later.stage.id} at stages[${later.index}] produces it, but only after ${label(stage)}`
      : need.hint,
  ].filter((note) => note);
  return `${what} is produced by no stage before ${label(stage)} (${notes.join('; ')})`;
}

function label(stage: ResolvedStage): string {
  return stage.id === stage.type ? stage.id : `${stage.id} (${stage.type})`;
}

/** The `--set` that gave the key a need comes from (or a key above it within the stage), if any. */
function overrideOf(
  overridden: Map<string, string>,
  path: readonly (string | number)[],
): { origin?: string } {
  for (let n = path.length; n > 2; n--) {
    const found = originOf(overridden, path.slice(0, n));
    if (found.origin) return found;
  }
  return {};
}

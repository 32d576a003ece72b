/**
 * How many classes a decoded dataset has, shared by the decoders (decodeIdx, decodeRecords): a
 * fixed number (`classes: 10`), as many as the `classNames` given, or `auto` — the largest label
 * of the `classesFrom` split + 1, fixed once that split's labels are all in, before any example
 * leaves the decoder (so before the first update). Every split's labels are checked against it;
 * the model gets one output per class.
 */
import type { z } from 'zod';
import type { Zod } from '../../util/zod.js';

/** The settings every decoder shares, spread into its schema (built when the schema is). */
export const classSettings = (z: Zod) => {
  return {
    // The evaluator keeps a classes² confusion matrix: 4096 classes is 134 MB of it, 20,000 was 3.2 GB.
    classes: z
      .union([z.literal('auto'), z.int().min(2).max(4096)])
      .default('auto')
      .describe(
        'labels lie in [0, classes) and the model has one output per class: a number, or auto (the largest classesFrom label + 1)',
      ),
    classNames: z
      .array(z.string().min(1))
      .min(2)
      .max(65536)
      .optional()
      .describe('a name per class, for warnings, model.json and the report; their number is the class count'),
    classesFrom: z
      .string()
      .default('train')
      .describe('with classes: auto, the split whose labels fix the count'),
  };
};

export interface ClassSettings {
  classes: 'auto' | number;
  classNames?: string[] | undefined;
  classesFrom: string;
}

/** Cross-key checks for a decoder's schema: names agree with a number; `classesFrom` is a split. */
export function checkClassSettings(s: ClassSettings, splits: readonly string[], ctx: z.RefinementCtx): void {
  if (s.classNames && typeof s.classes === 'number' && s.classNames.length !== s.classes) {
    ctx.addIssue({
      code: 'custom',
      path: ['classNames'],
      message: `${s.classNames.length} names for ${s.classes} classes (give one name per class, or leave classes at auto)`,
    });
  }
  if (s.classes === 'auto' && !s.classNames && !splits.includes(s.classesFrom)) {
    ctx.addIssue({
      code: 'custom',
      path: ['classesFrom'],
      message: `classes: auto counts the labels of split "${s.classesFrom}", which is not among the splits (${splits.join(', ')}); name one, or give classes as a number`,
    });
  }
}

/** The class count as it becomes known, and the label check against it. */
export class LabelClasses {
  /** The number of classes, or undefined while `auto` waits for the `classesFrom` labels. */
  count: number | undefined;
  readonly names: readonly string[] | undefined;
  private largest = -1;

  constructor(
    private readonly settings: ClassSettings,
    /** The stage type, for messages. */
    private readonly stage: string,
  ) {
    this.names = settings.classNames;
    this.count = typeof settings.classes === 'number' ? settings.classes : settings.classNames?.length;
  }

  /** The split whose labels fix the count, while it is not fixed yet. */
  get waitingFor(): string | undefined {
    return this.count === undefined ? this.settings.classesFrom : undefined;
  }

  /**
   * Index in `values` of the first label outside the classes (negative ones at once, the rest once
   * the count is known), or -1. Labels of the `classesFrom` split also raise the largest seen.
   */
  check(values: ArrayLike<number>, split: string): number {
    const limit = this.count ?? Number.POSITIVE_INFINITY;
    const counting = this.count === undefined && split === this.settings.classesFrom;
    // Int32Array labels are integers already: no Number.isInteger call, which doubles the cost of
    // a loop that runs once or twice per file, in the interpreter.
    const integers = values instanceof Int32Array;
    let largest = this.largest;
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (v < 0 || v >= limit || (!integers && !Number.isInteger(v))) return i;
      if (v > largest) largest = v;
    }
    if (counting) this.largest = largest;
    return -1;
  }

  /** Every `classesFrom` label is in: the count is the largest + 1. A single class is an error message. */
  resolve(): string | undefined {
    if (this.count !== undefined) return undefined;
    if (this.largest < 1) {
      return `every ${this.settings.classesFrom} label is ${this.largest < 0 ? 'absent' : '0'}: one class is nothing to learn (${this.stage}.classes: auto)`;
    }
    this.count = this.largest + 1;
    return undefined;
  }

  /** `label 10 of example 7 is outside [0, 10) (decodeIdx.classes)`. */
  describe(label: number, example: number): string {
    const range =
      this.count === undefined
        ? 'is not a class number (negative or fractional)'
        : `is outside [0, ${this.count})`;
    const why =
      typeof this.settings.classes === 'number'
        ? `${this.stage}.classes`
        : this.settings.classNames
          ? `${this.stage}.classNames: ${this.settings.classNames.length} classes`
          : `${this.stage}.classes: auto, the largest ${this.settings.classesFrom} label + 1`;
    return `label ${label} of example ${example} ${range} (${why})`;
  }
}

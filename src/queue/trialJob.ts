/**
 * What a trial's job carries to a worker, and what the worker hands back: plain data, checked with
 * zod on arrival (a job written by another rxtrain version fails with a clear message).
 */
import { z } from 'zod';

export const TrialJobData = z
  .object({
    /** The sweep's queue (the worker's directories and rxtrain's keys are named after it). */
    queue: z.string(),
    trial: z.string(),
    /** The base experiment: its file name and text, written out on the worker. */
    base: z.object({ name: z.string(), text: z.string() }).strict(),
    /** The `--set` overrides of the trial's `rxtrain run`. */
    overrides: z.array(z.string()),
  })
  .strict();
export type TrialJobData = z.infer<typeof TrialJobData>;

export const TrialJobResult = z
  .object({
    /** How the trial's process ended on the worker. */
    code: z.number().int().nullable(),
    signal: z.string().nullable(),
    /** How long the trial's process ran on the worker, ms. */
    wallMs: z.number().int().nonnegative(),
    /** The stop request it obeyed: ASHA's rung, or -1 for any other stop. */
    stoppedAt: z.number().int().optional(),
    /** The worker that ran it, and the end of its output (for a failed trial's error line). */
    worker: z.string(),
    log: z.string(),
  })
  .strict();
export type TrialJobResult = z.infer<typeof TrialJobResult>;

/**
 * The compiled hidden-layer module (mlp.wat) and its exports. It imports its memory, so each
 * instance is made on the memory of a softmax-regression instance (softmaxRegressionModule.ts).
 */
import { MLP_WASM } from './mlpWasm.js';
import { wasm } from './softmaxRegressionModule.js';

export interface MlpExports {
  sparseForward(
    B: number,
    W: number,
    Hp: number,
    base: number,
    idx: number,
    val: number,
    offs: number,
    out: number,
  ): void;
  sparseScatter(
    B: number,
    T: number,
    Hp: number,
    delta: number,
    idx: number,
    val: number,
    offs: number,
    alpha: number,
  ): void;
  /** kind 0: ReLU, 1: tanh. */
  activate(p: number, n: number, kind: number): void;
  backHidden(
    B: number,
    W: number,
    Cp: number,
    Hin: number,
    delta: number,
    h: number,
    kind: number,
    out: number,
  ): void;
  columnSums(B: number, delta: number, Hp: number, out: number): void;
}

let compiled: object | undefined;

/** An instance working on `memory` (the softmax-regression instance's exported memory). */
export function mlpInstance(memory: unknown): MlpExports {
  compiled ??= new wasm.Module(Buffer.from(MLP_WASM, 'base64'));
  return new wasm.Instance(compiled, { kernel: { memory } }).exports as MlpExports;
}

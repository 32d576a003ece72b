/** The compiled SIMD kernel module and the exports the softmax-regression kernel calls. */
import { SOFTMAX_REGRESSION_WASM } from './softmaxRegressionWasm.js';

/** The part of the WebAssembly API used here (the project's lib settings do not declare it). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
}
export const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

export interface KernelExports {
  memory: { buffer: ArrayBuffer; grow(pages: number): number };
  sparsifyU8(
    x: number,
    B: number,
    width: number,
    scale: number,
    uniform: number,
    rowBytes: number,
    lut: number,
    pos: number,
    idx: number,
    val: number,
    bytes: number,
    keep: number,
    offs: number,
  ): number;
  sparsifyF32(
    x: number,
    B: number,
    width: number,
    scale: number,
    rowBytes: number,
    idx: number,
    val: number,
    offs: number,
  ): number;
  expandU8(
    pos: number,
    bytes: number,
    n: number,
    rowBytes: number,
    scale: number,
    uniform: number,
    idx: number,
    val: number,
  ): void;
  expandRows(
    B: number,
    src: number,
    bounds: number,
    rowBytes: number,
    scale: number,
    uniform: number,
    idx: number,
    val: number,
    offs: number,
    at: number,
  ): number;
  interleaveRows(B: number, pos: number, bytes: number, offs: number, out: number, bounds: number): number;
  logits(
    B: number,
    W: number,
    Cp: number,
    base: number,
    idx: number,
    val: number,
    offs: number,
    out: number,
  ): void;
  scatter(
    B: number,
    T: number,
    Cp: number,
    delta: number,
    idx: number,
    val: number,
    offs: number,
    alpha: number,
  ): void;
  softmax(
    z: number,
    B: number,
    Cp: number,
    C: number,
    labels: number,
    grad: number,
    dsum: number,
    stats: number,
  ): void;
  rowsDot(W: number, Cp: number, coef: number, j0: number, j1: number, out: number): void;
  rowsAxpy(T: number, Cp: number, coef: number, j0: number, j1: number, alpha: number, vec: number): void;
  sumSquares(p: number, n: number): number;
  applyUpdate(
    W: number,
    G: number,
    V: number,
    n: number,
    lr: number,
    gscale: number,
    decay: number,
    mu: number,
    nesterov: number,
  ): void;
}

let compiled: object | undefined;

/** Compiled once per process: 2 KB, so synchronous compilation is quick (and allowed in Node). */
export function kernelModule(): object {
  compiled ??= new wasm.Module(Buffer.from(SOFTMAX_REGRESSION_WASM, 'base64'));
  return compiled;
}

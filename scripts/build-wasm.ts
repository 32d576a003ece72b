/**
 * Assemble the WebAssembly kernels: src/kernels/simd/*.wat → src/kernels/simd/*Wasm.ts, a base64
 * string module, so the runtime needs neither a toolchain nor a file read. `npm run build:wasm`;
 * test/kernels-wasm.test.ts fails when a committed module no longer matches its source.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import wabtInit from 'wabt';

export const SIMD_DIR = resolve(fileURLToPath(import.meta.url), '../../../src/kernels/simd');

/**
 * The binary for one .wat source (SIMD and bulk memory enabled, no debug names: the bytes depend
 * on the text alone).
 */
export async function assembleWat(file: string, text: string): Promise<Uint8Array> {
  const wabt = await wabtInit();
  const module = wabt.parseWat(basename(file), text, { simd: true, bulk_memory: true });
  try {
    module.validate();
    return module.toBinary({ write_debug_names: false }).buffer;
  } finally {
    module.destroy();
  }
}

/** The TypeScript module that carries a binary. */
export function wasmModuleSource(watName: string, exportName: string, bytes: Uint8Array): string {
  const base64 = Buffer.from(bytes).toString('base64');
  const lines = base64.match(/.{1,100}/g) ?? [];
  return [
    `// Generated from ${watName} by \`npm run build:wasm\` (scripts/build-wasm.ts). Do not edit.`,
    `export const ${exportName} =`,
    ...lines.map((l, i) => `  '${l}'${i === lines.length - 1 ? ';' : ' +'}`),
    '',
  ].join('\n');
}

/** softmaxRegression.wat → softmaxRegressionWasm.ts exporting SOFTMAX_REGRESSION_WASM. */
export function targetOf(watName: string): { file: string; exportName: string } {
  const stem = watName.replace(/\.wat$/, '');
  const exportName = `${stem.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()}_WASM`;
  return { file: `${stem}Wasm.ts`, exportName };
}

async function main(): Promise<void> {
  for (const name of readdirSync(SIMD_DIR).filter((n) => n.endsWith('.wat'))) {
    const bytes = await assembleWat(name, readFileSync(join(SIMD_DIR, name), 'utf8'));
    const target = targetOf(name);
    writeFileSync(join(SIMD_DIR, target.file), wasmModuleSource(name, target.exportName, bytes));
    process.stdout.write(`${name} → ${target.file} (${bytes.byteLength} bytes)\n`);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();

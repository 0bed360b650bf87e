import { UsageError } from '../errors.js';
import { createReference64KernelsAsFloat32, createReferenceKernels } from './reference.js';
import type { Kernels } from './types.js';

export type Backend = 'wasm' | 'wasm-simd' | 'reference' | 'reference64';
export const BACKENDS: readonly Backend[] = ['wasm', 'wasm-simd', 'reference', 'reference64'];

/**
 * `wasm`: the best wasm build the runtime supports (relaxed SIMD, else plain SIMD);
 * `wasm-simd`: plain SIMD even where relaxed SIMD exists; `reference`: the TS oracle;
 * `reference64`: the TS oracle with every intermediate kept in float64 (trace bundles).
 */
export async function createKernels(backend: Backend = 'wasm'): Promise<Kernels> {
  if (backend === 'reference') return createReferenceKernels();
  if (backend === 'reference64') return createReference64KernelsAsFloat32();
  if (backend !== 'wasm' && backend !== 'wasm-simd') {
    throw new UsageError(`unknown backend '${backend}': expected one of ${BACKENDS.join(', ')}`);
  }
  const { createWasmKernels } = await import('./wasm.js');
  return createWasmKernels({ variant: backend === 'wasm' ? 'auto' : 'simd' });
}

export type { FloatArray, Kernels, Linear, PreparedLinear } from './types.js';
export { view } from './types.js';
export { createReferenceKernels } from './reference.js';
export { createWasmKernels, relaxedSimdSupported, type WasmKernelOptions, type WasmKernels, type WasmVariant } from './wasm.js';

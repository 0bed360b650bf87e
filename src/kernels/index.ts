import { UsageError } from '../errors.js';
import { createReference64KernelsAsFloat32, createReferenceKernels } from './reference.js';
import type { Kernels } from './types.js';

export { defaultThreadCount } from './pool.js';

export type Backend = 'wasm' | 'wasm-simd' | 'reference' | 'reference64';
export const BACKENDS: readonly Backend[] = ['wasm', 'wasm-simd', 'reference', 'reference64'];

export interface KernelOptions {
  /**
   * Threads the wasm backends run on, the calling thread included (default 1: no workers;
   * `defaultThreadCount()` gives the cores the runtime reports, at most 4). Results are
   * bit-identical for every count. The reference backends always run on one.
   */
  threads?: number;
}

/**
 * `wasm`: the best wasm build the runtime supports (relaxed SIMD, else plain SIMD);
 * `wasm-simd`: plain SIMD even where relaxed SIMD exists; `reference`: the TS oracle;
 * `reference64`: the TS oracle with every intermediate kept in float64 (trace bundles).
 * `dispose()` the kernels to end their threads (they never keep Node alive).
 */
export async function createKernels(backend: Backend = 'wasm', options: KernelOptions = {}): Promise<Kernels> {
  if (backend === 'reference') return createReferenceKernels();
  if (backend === 'reference64') return createReference64KernelsAsFloat32();
  if (backend !== 'wasm' && backend !== 'wasm-simd') {
    throw new UsageError(`unknown backend '${backend}': expected one of ${BACKENDS.join(', ')}`);
  }
  const { createWasmKernels } = await import('./wasm.js');
  return createWasmKernels({ variant: backend === 'wasm' ? 'auto' : 'simd', threads: options.threads });
}

export type { FloatArray, Kernels, Linear, PreparedLinear } from './types.js';
export { view } from './types.js';
export { createReferenceKernels } from './reference.js';
export { createWasmKernels, relaxedSimdSupported, type WasmKernelOptions, type WasmKernels, type WasmVariant } from './wasm.js';

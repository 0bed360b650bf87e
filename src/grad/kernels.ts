import type { Kernels } from '../kernels/types.js';
import type { WasmKernels } from '../kernels/wasm.js';
import { createReferenceGradKernels } from './reference.js';
import type { GradKernels } from './types.js';
import { createWasmGradKernels } from './wasm.js';

/** The gradient kernels that go with a forward backend: on its wasm memory, or the float32 reference. */
export function gradKernelsFor(kernels: Kernels): GradKernels {
  const wasm = kernels as Partial<WasmKernels>;
  if (wasm.memory instanceof WebAssembly.Memory && wasm.module instanceof WebAssembly.Module) return createWasmGradKernels(kernels as WasmKernels);
  return createReferenceGradKernels('float32');
}

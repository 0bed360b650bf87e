/** Variant builders for test/image-workers.test.ts, run inside evaluation threads. */
import type { VariantSetup } from '../src/eval/image-workers.js';
import { createKernels } from '../src/kernels/index.js';
import { ViTRunner } from '../src/model/vit.js';
import { loadModelFolder } from '../src/node.js';

export async function failingSetup(): Promise<VariantSetup> {
  throw new Error('this setup always fails');
}

/** The tiny model with a variant whose forward pass ends the thread. */
export async function dyingSetup({ model }: { model: string }): Promise<VariantSetup> {
  const runner = new ViTRunner(loadModelFolder(model), await createKernels('wasm', { threads: 1 }));
  return { runner, variants: [{ name: 'dense' }, { name: 'exit', hooks: () => ({ afterBlock: () => process.exit(3) }) }] };
}

/** The tiny model, dense only. */
export async function denseSetup({ model }: { model: string }): Promise<VariantSetup> {
  const runner = new ViTRunner(loadModelFolder(model), await createKernels('wasm', { threads: 1 }));
  return { runner, variants: [{ name: 'dense' }] };
}

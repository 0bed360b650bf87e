import { expect, it } from 'vitest';
import { createWasmKernels } from '../src/kernels/wasm.js';
import { configFromDims, randomModel } from '../src/model/random.js';
import type { ViTConfig } from '../src/model/types.js';
import { ViTRunner } from '../src/model/vit.js';
import { planPruning } from '../src/prune/registry.js';

/**
 * Activations live in wasm memory in buffers sized once per model: 1,000 consecutive inferences
 * (dense and pruned by each method) must not grow the wasm memory.
 */
const uniform = configFromDims({ dim: 32, depth: 12, heads: 2, imageSize: 64, patchSize: 8, numClasses: 10 });
// A channel-pruned shape: every block its own per-head widths.
const perBlock: ViTConfig = { ...uniform, blockWidths: Array.from({ length: 12 }, (_, b) => ({ qkDim: 16 - (b % 4), vDim: 9 + (b % 3) })) };

it.each([['uniform widths', uniform], ['per-block widths', perBlock]] as const)('wasm memory does not grow across 1,000 consecutive inferences (%s)', async (_, cfg) => {
  const kernels = await createWasmKernels();
  const runner = new ViTRunner(randomModel(cfg, 4), kernels);
  const input = Float32Array.from({ length: 3 * 64 * 64 }, (_, i) => Math.sin(i));
  const plans = [
    null,
    await planPruning(cfg, { method: 'zero-tprune', keep: 0.7 }),
    await planPruning(cfg, { method: 'tome', settings: { r: 2 } }),
    await planPruning(cfg, { method: 'evit', keep: 0.7 }),
    await planPruning(cfg, { method: 'random', keep: 0.7 }),
  ];
  // Warm up every path once (lazily sized scratch areas are allowed to appear here).
  plans.forEach((p, i) => runner.forward(input, p?.hooks(i)));
  const bytes = kernels.memory.buffer.byteLength;
  for (let i = 0; i < 1000; i++) {
    const p = plans[i % plans.length];
    runner.forward(input, p?.hooks(i));
  }
  expect(kernels.memory.buffer.byteLength).toBe(bytes);
});

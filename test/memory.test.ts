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

it.each([
  ['uniform widths', uniform],
  ['per-block widths', perBlock],
] as const)('wasm memory does not grow across 1,000 consecutive inferences (%s)', async (_, cfg) => {
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

it('wasm memory stays where it was after the first of 100 runners created and disposed', async () => {
  const cfg = uniform;
  const model = randomModel(cfg, 5);
  const kernels = await createWasmKernels();
  const input = Float32Array.from({ length: 3 * 64 * 64 }, (_, i) => Math.cos(i));
  const plan = await planPruning(cfg, { method: 'zero-tprune', keep: 0.7 });
  const cycle = (): Float32Array => {
    using runner = new ViTRunner(model, kernels);
    return runner.forward(input, plan.hooks(0)).logits;
  };
  const firstLogits = cycle();
  const bytes = kernels.memory.buffer.byteLength;
  const allocated = kernels.allocatedBytes();
  const rss = process.memoryUsage().rss;
  for (let i = 1; i < 100; i++) expect(cycle()).toEqual(firstLogits);
  expect(kernels.memory.buffer.byteLength).toBe(bytes);
  expect(kernels.allocatedBytes()).toBe(allocated);
  process.stderr.write(
    `100 runners created and disposed: wasm memory ${bytes} bytes throughout, RSS ${(rss / 2 ** 20).toFixed(1)} MB after the first, ${(process.memoryUsage().rss / 2 ** 20).toFixed(1)} MB after the last\n`,
  );
});

it('a disposed runner refuses to run, and its buffers are refused by free', async () => {
  const cfg = configFromDims({ dim: 32, depth: 2, heads: 2, imageSize: 32, patchSize: 8, numClasses: 10 });
  const kernels = await createWasmKernels();
  const runner = new ViTRunner(randomModel(cfg, 6), kernels);
  runner.dispose();
  runner.dispose(); // twice is harmless
  expect(() => runner.forward(new Float32Array(3 * 32 * 32))).toThrow(/disposed/);
  const buffer = kernels.alloc(10);
  kernels.free(buffer);
  expect(() => kernels.free(buffer)).toThrow(/freed already/);
  expect(() => kernels.free(kernels.alloc(10).subarray(2))).toThrow(/a part of a buffer/);
});

it('wasm memory does not grow across 1,000 inferences on 2 threads', async () => {
  // DeiT-Tiny's width on 37 tokens: its GEMMs and attention are large enough to run on both threads.
  const cfg = configFromDims({ dim: 192, depth: 12, heads: 3, imageSize: 48, patchSize: 8, numClasses: 100 });
  const kernels = await createWasmKernels({ threads: 2 });
  try {
    const runner = new ViTRunner(randomModel(cfg, 4), kernels);
    const input = Float32Array.from({ length: 3 * 48 * 48 }, (_, i) => Math.sin(i));
    const plans = [null, await planPruning(cfg, { method: 'zero-tprune', keep: 0.7 }), await planPruning(cfg, { method: 'tome', settings: { r: 2 } })];
    plans.forEach((p, i) => runner.forward(input, p?.hooks(i)));
    const bytes = kernels.memory.buffer.byteLength;
    const rss = process.memoryUsage().rss;
    for (let i = 0; i < 1000; i++) runner.forward(input, plans[i % plans.length]?.hooks(i));
    expect(kernels.memory.buffer.byteLength).toBe(bytes);
    expect(kernels.pool!.jobs).toBeGreaterThan(1000);
    expect(Math.min(...kernels.pool!.chunksPerThread())).toBeGreaterThan(0);
    process.stderr.write(
      `1,000 inferences on 2 threads: wasm memory ${bytes} bytes throughout, RSS ${(rss / 2 ** 20).toFixed(1)} → ${(process.memoryUsage().rss / 2 ** 20).toFixed(1)} MB\n`,
    );
  } finally {
    await kernels.dispose();
  }
}, 120_000);

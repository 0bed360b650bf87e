import path from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { distillationLoss } from '../src/grad/distillation.js';
import { createReferenceGradKernels } from '../src/grad/reference.js';
import { SoftMaskedViT, type SoftPruning } from '../src/grad/soft-vit.js';
import { createWasmGradKernels } from '../src/grad/wasm.js';
import { createWasmKernels, type WasmKernels } from '../src/kernels/wasm.js';
import { loadModelFolder } from '../src/model/folder.js';
import { readSafetensors } from '../src/model/safetensors-file.js';
import type { ViTModel } from '../src/model/types.js';
import { ViTRunner } from '../src/model/vit.js';
import { ltpHooks } from '../src/prune/ltp.js';
import { expectGradient } from './grad-check.js';
import { describeWithData, SHARED_DATA } from './shared-data.js';

// The soft-masked model and its gradients on DeiT-Tiny's real weights and a real image (golden
// sample0): on the wasm backend it is the dense forward without pruning and the hard LTP forward
// at T → 0, and its float32 gradients follow the float64 reference path's.

describeWithData('soft-masked DeiT-Tiny (real weights)', () => {
  let model: ViTModel;
  let wasm: WasmKernels;
  let runner: ViTRunner;
  let input: Float32Array;
  beforeAll(async () => {
    const folder = path.join(SHARED_DATA, 'deit-tiny');
    model = loadModelFolder(folder);
    wasm = await createWasmKernels();
    runner = new ViTRunner(model, wasm);
    input = readSafetensors(path.join(folder, 'golden_reference.safetensors')).tensors.get('sample0.input')!.data;
  });
  // LTP's ramp at c = 0.75 (≈ 0.70 × dense GMACs), in units of the mean score.
  const theta = Array.from({ length: 12 }, (_, l) => (0.75 * l) / 12);
  const pruning = (temperature: (t: number) => number): SoftPruning => ({
    thresholds: theta.map((t) => (t > 0 ? { theta: t, temperature: temperature(t), unit: 'mean' } : null)),
  });

  it('is the dense forward without pruning and the hard LTP forward with masks at 0/1', () => {
    const soft = new SoftMaskedViT(model, createWasmGradKernels(wasm));
    const dense = runner.forward(input);
    const unpruned = soft.forward(runner.embed(input));
    expect(Math.max(...unpruned.logits.map((l, i) => Math.abs(l - dense.logits[i])))).toBeLessThan(1e-4);
    const hard = runner.forward(input, ltpHooks({ theta, unit: 'mean' }));
    const cold = soft.forward(
      runner.embed(input),
      pruning(() => 1e-9),
    );
    expect(cold.tokens.map((t) => ({ attention: Math.round(t.attention), mlp: Math.round(t.mlp) }))).toEqual(hard.tokens);
    expect(Math.max(...cold.logits.map((l, i) => Math.abs(l - hard.logits[i])))).toBeLessThan(1e-3);
  });

  it('has float32 gradients within 2e-4 of the float64 reference path (θ and embedded tokens; seen: 2e-6 and 2e-5)', () => {
    const gradients = (soft: SoftMaskedViT) => {
      const embedded = runner.embed(input);
      const teacher = soft.forward(embedded).logits;
      const result = soft.forward(
        embedded,
        pruning((t) => 0.1 * t),
      );
      const g = soft.backward(distillationLoss(teacher, result.logits).dLogits);
      return { theta: g.theta, embedded: Float64Array.from(g.embedded) };
    };
    const want = gradients(new SoftMaskedViT(model, createReferenceGradKernels('float64')));
    const got = gradients(new SoftMaskedViT(model, createWasmGradKernels(wasm)));
    expect(Math.max(...want.theta.map(Math.abs))).toBeGreaterThan(1e-3); // a gradient worth comparing
    expectGradient(got.theta, want.theta, 2e-4, 'dθ');
    expectGradient(got.embedded, want.embedded, 2e-4, 'd embedded');
  });
});

/**
 * Cost of a forward + backward pass through the soft-masked model (what learning LTP thresholds
 * runs per image) against a dense forward pass, single thread, interleaved in one run:
 *   npx tsx bench/grad.ts [--model M] [--runs N] [--backend wasm|wasm-simd]
 * M: a model folder (default /work/shared/data/deit-tiny, fed its golden sample0 input) or
 * random:<timm architecture> (fed benchInput). The soft pass prunes in every block but the first
 * (θ = 0.3·l/L in units of the mean score, T = 0.1), as learn-ltp does; the soft forward alone is
 * timed too.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadModelSpec } from '../src/cli/common.js';
import { benchInput } from '../src/eval/bench.js';
import { median } from '../src/eval/metrics.js';
import { distillationLoss } from '../src/grad/distillation.js';
import { SoftMaskedViT, type SoftPruning } from '../src/grad/soft-vit.js';
import { createWasmGradKernels } from '../src/grad/wasm.js';
import { createWasmKernels } from '../src/kernels/wasm.js';
import { readSafetensors } from '../src/model/safetensors-file.js';
import { ViTRunner } from '../src/model/vit.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: '/work/shared/data/deit-tiny' },
    runs: { type: 'string', default: '20' },
    backend: { type: 'string', default: 'wasm' },
  },
});
const runs = Number(values.runs);
const spec = values.model!;
const model = await loadModelSpec(spec, { quiet: true });
const cfg = model.config;
const wasm = await createWasmKernels({ variant: values.backend === 'wasm-simd' ? 'simd' : 'auto' });
const runner = new ViTRunner(model, wasm);
const soft = new SoftMaskedViT(model, createWasmGradKernels(wasm));

const golden = path.join(spec, 'golden_reference.safetensors');
const realInput = !spec.startsWith('random:') && existsSync(golden);
const input = realInput ? readSafetensors(golden).tensors.get('sample0.input')!.data : benchInput(cfg);

const pruning: SoftPruning = {
  thresholds: Array.from({ length: cfg.depth }, (_, l) => (l === 0 ? null : { theta: (0.3 * l) / cfg.depth, temperature: 0.1, unit: 'mean' })),
};
const teacher = runner.forward(input).logits;
const counts = Array.from({ length: cfg.depth }, () => ({ attention: 1e-4, mlp: 1e-4 }));

const warmup = 3;
const dense: number[] = [];
const forward: number[] = [];
const total: number[] = [];
for (let i = 0; i < warmup + runs; i++) {
  let t0 = performance.now();
  runner.forward(input);
  const denseMs = performance.now() - t0;
  t0 = performance.now();
  const embedded = runner.embed(input);
  const result = soft.forward(embedded, pruning);
  const forwardMs = performance.now() - t0;
  soft.backward(distillationLoss(teacher, result.logits).dLogits, counts);
  const totalMs = performance.now() - t0;
  if (i >= warmup) {
    dense.push(denseMs);
    forward.push(forwardMs);
    total.push(totalMs);
  }
}

const denseMs = median(dense);
console.log(`${spec} (${wasm.name}, 1 thread, ${runs} runs, input: ${realInput ? 'golden sample0' : 'benchInput'})`);
console.log(`  dense forward              ${denseMs.toFixed(2)} ms`);
console.log(`  soft forward               ${median(forward).toFixed(2)} ms  ×${(median(forward) / denseMs).toFixed(2)} of dense`);
console.log(
  `  soft forward + backward    ${median(total).toFixed(2)} ms  ×${(median(total) / denseMs).toFixed(2)} of dense (ratio of medians; per-run median ×${median(total.map((t, i) => t / dense[i])).toFixed(2)})`,
);

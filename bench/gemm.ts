/**
 * Micro-benchmark of the wasm backend, single thread: GFLOP/s of the packed GEMM (`linear`) on
 * DeiT-S shapes for both builds, and the time of one attention call (n = 197, H = 6, d = 64).
 *   npx tsx bench/gemm.ts [--runs 30]
 */
import { parseArgs } from 'node:util';
import { createWasmKernels, type WasmKernels, type WasmVariant } from '../src/kernels/wasm.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '30' } } });
const runs = Number(values.runs);
const warmupRuns = 5;

/** Median wall time in ms of `runs` calls after warm-up. */
function medianMs(fn: () => void): number {
  for (let i = 0; i < warmupRuns; i++) fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    fn();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

function random(length: number): Float32Array {
  return Float32Array.from({ length }, () => Math.random() * 2 - 1);
}

const gemmShapes = [
  { label: 'DeiT-S qkv  197×384 · 384×1152', m: 197, k: 384, n: 1152 },
  { label: 'DeiT-S fc2  197×1536 · 1536×384', m: 197, k: 1536, n: 384 },
];

function benchGemm(kernels: WasmKernels, m: number, k: number, n: number): number {
  const w = kernels.prepareLinear({ weight: random(n * k), bias: random(n), outFeatures: n, inFeatures: k });
  const x = kernels.upload(random(m * k));
  const out = kernels.alloc(m * n);
  const ms = medianMs(() => kernels.linear(x, m, w, out));
  return (2 * m * k * n) / (ms * 1e6);
}

function benchAttention(kernels: WasmKernels, n: number, heads: number, d: number): number {
  const qkv = kernels.upload(random(n * 3 * heads * d));
  const probs = kernels.alloc(heads * n * n);
  const out = kernels.alloc(n * heads * d);
  return medianMs(() => kernels.attention(qkv, n, heads, d, d, 1 / Math.sqrt(d), null, probs, out));
}

const variants: WasmVariant[] = ['relaxed', 'simd'];
console.log(`single thread, median of ${runs} runs after ${warmupRuns} warm-up runs`);
for (const variant of variants) {
  const kernels = await createWasmKernels({ variant, checks: false });
  for (const { label, m, k, n } of gemmShapes) {
    console.log(`${kernels.name.padEnd(13)} ${label}: ${benchGemm(kernels, m, k, n).toFixed(1)} GFLOP/s`);
  }
  const n = 197, heads = 6, d = 64;
  const ms = benchAttention(kernels, n, heads, d);
  const flops = heads * 2 * (2 * n * n * d); // QKᵀ and P·V
  console.log(`${kernels.name.padEnd(13)} attention n=${n} H=${heads} d=${d}: ${ms.toFixed(3)} ms (${(flops / (ms * 1e6)).toFixed(1)} GFLOP/s in its matmuls)`);
}

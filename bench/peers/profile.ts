/**
 * Where vitprune's time goes in one dense forward pass (wasm backend, 1 thread), per kernel:
 * the Kernels object handed to ViTRunner is wrapped so every call is timed and attributed to a
 * layer (patch_embed, qkv, attention, proj, fc1+GELU, fc2, layerNorm, head); the runner's
 * im2col is timed too; the rest of forward() is the JavaScript glue (pos-embed add, token
 * bookkeeping, logits copy). Then the attention kernel is split into its parts (K packing,
 * Q·Kᵀ GEMM, softmax, P·V GEMM) by calling the module's exports on a second instance over
 * the same memory, and the fc1 GELU epilogue is priced against a plain store.
 *
 *   npx tsx profile.ts [--model M] [--runs N] [--json]      (inside bench/peers)
 */
import { parseArgs } from 'node:util';
import { loadModelSpec } from '../../src/cli/common.js';
import { benchInput } from '../../src/eval/bench.js';
import { median } from '../../src/eval/metrics.js';
import { createWasmKernels, type WasmKernels } from '../../src/kernels/wasm.js';
import type { Kernels, PreparedLinear } from '../../src/kernels/types.js';
import type { ViTConfig } from '../../src/model/types.js';
import { numPatches, prefixTokens } from '../../src/model/types.js';
import { ViTRunner } from '../../src/model/vit.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'random:deit_small_patch16_224' },
    runs: { type: 'string', default: '20' },
    json: { type: 'boolean', default: false },
  },
});
const runs = Number(values.runs);
const warmup = 3;

const model = await loadModelSpec(values.model!, { quiet: true });
const cfg = model.config;
const kernels = await createWasmKernels();
const input = benchInput(cfg);

// ---------------------------------------------------------------- per-kernel timing of forward()

const T = prefixTokens(cfg) + numPatches(cfg);
const { dim: D, heads: H, qkDim: QK, vDim: V, mlpDim: M } = cfg;
const qkvWidth = 2 * H * QK + H * V;

/** Which layer a GEMM call belongs to, from the method and the shapes. */
function gemmName(method: string, m: number, w: PreparedLinear): string {
  if (method === 'linearGelu') return 'fc1 (+GELU)';
  if (method === 'linearAdd') return w.inFeatures === M ? 'fc2 (+residual)' : 'proj (+residual)';
  if (m <= prefixTokens(cfg) && w.outFeatures === cfg.numClasses) return 'head';
  if (w.outFeatures === qkvWidth) return 'qkv';
  return 'patch_embed';
}

const acc = new Map<string, number>(); // ms this forward, per category
const calls = new Map<string, number>();
const macs = new Map<string, number>();
function add(name: string, ms: number, mac = 0): void {
  acc.set(name, (acc.get(name) ?? 0) + ms);
  calls.set(name, (calls.get(name) ?? 0) + 1);
  macs.set(name, (macs.get(name) ?? 0) + mac);
}

const timed: Kernels = {
  ...kernels,
  linear(x, m, w, out) {
    const t = performance.now();
    kernels.linear(x, m, w, out);
    add(gemmName('linear', m, w), performance.now() - t, m * w.inFeatures * w.outFeatures);
  },
  linearAdd(x, m, w, out) {
    const t = performance.now();
    kernels.linearAdd(x, m, w, out);
    add(gemmName('linearAdd', m, w), performance.now() - t, m * w.inFeatures * w.outFeatures);
  },
  linearGelu(x, m, w, out) {
    const t = performance.now();
    kernels.linearGelu(x, m, w, out);
    add(gemmName('linearGelu', m, w), performance.now() - t, m * w.inFeatures * w.outFeatures);
  },
  layerNorm(x, m, d, g, b, eps, out) {
    const t = performance.now();
    kernels.layerNorm(x, m, d, g, b, eps, out);
    add('layerNorm', performance.now() - t);
  },
  attention(qkv, n, heads, qkDim, vDim, scale, logSizes, probs, out) {
    const t = performance.now();
    kernels.attention(qkv, n, heads, qkDim, vDim, scale, logSizes, probs, out);
    add('attention (QKᵀ, softmax, PV)', performance.now() - t, heads * n * n * (qkDim + vDim));
  },
  gelu(x, length) {
    const t = performance.now();
    kernels.gelu(x, length);
    add('gelu (standalone)', performance.now() - t);
  },
  softmax(x, rows, cols) {
    const t = performance.now();
    kernels.softmax(x, rows, cols);
    add('softmax (standalone)', performance.now() - t);
  },
};

const runner = new ViTRunner(model, timed);
// im2col is private in TypeScript only: wrap it on the instance.
const r = runner as unknown as { im2col(input: Float32Array): void };
const im2col = r.im2col.bind(runner);
r.im2col = (img: Float32Array) => {
  const t = performance.now();
  im2col(img);
  add('JS im2col', performance.now() - t);
};

const perForward: Record<string, number[]> = {};
const totals: number[] = [];
for (let i = 0; i < warmup + runs; i++) {
  acc.clear();
  calls.clear();
  macs.clear();
  const t = performance.now();
  runner.forward(input);
  const total = performance.now() - t;
  if (i < warmup) continue;
  let kernelSum = 0;
  for (const [name, ms] of acc) {
    (perForward[name] ??= []).push(ms);
    kernelSum += ms;
  }
  (perForward['JS glue (pos-embed add, bookkeeping, logits copy)'] ??= []).push(total - kernelSum);
  totals.push(total);
}

const totalMs = median(totals);
const rows = Object.entries(perForward)
  .map(([name, s]) => {
    const ms = median(s);
    const mac = macs.get(name) ?? 0;
    return { name, ms, share: ms / totalMs, calls: calls.get(name) ?? 0, gflops: mac ? (2 * mac) / (ms * 1e6) : null };
  })
  .sort((a, b) => b.ms - a.ms);

// ---------------------------------------------------------------- attention split and GELU epilogue

interface Exports {
  f32_pack_panels8(src: number, srcStride: number, n: number, k: number, scale: number, dst: number): void;
  f32_gemm_4x8_wasmsimd(m: number, n: number, k: number, a: number, lda: number, b: number, panelStride: number, bRowStride: number, bias: number, c: number, ldc: number, epilogue: number): void;
  f32_softmax_rows_wasmsimd(x: number, rows: number, cols: number): void;
}

function medianMs(fn: () => void, reps = 30): number {
  for (let i = 0; i < 5; i++) fn();
  const s: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    fn();
    s.push(performance.now() - t);
  }
  return median(s);
}

async function attentionSplit(k: WasmKernels, c: ViTConfig) {
  // A second instance of the same module on the same memory: it re-applies the same static data
  // and its own globals; the kernels used here keep no state.
  const inst = await WebAssembly.instantiate(k.module, { env: { memory: k.memory } });
  const w = inst.exports as unknown as Exports;
  const n = T;
  const rand = (len: number) => k.upload(Float32Array.from({ length: len }, () => Math.random() * 2 - 1));
  const qkv = rand(n * qkvWidth);
  const probs = k.alloc(n * n);
  const out = k.alloc(n * H * V);
  const scratch = k.alloc(Math.ceil(n / 8) * 8 * QK);
  const q = qkv.byteOffset;
  const kk = q + 4 * H * QK;
  const v = q + 4 * 2 * H * QK;
  const scale = 1 / Math.sqrt(QK);
  // One head's parts, ×H heads ×depth blocks.
  const perModel = H * c.depth;
  const pack = medianMs(() => w.f32_pack_panels8(kk, qkvWidth, n, QK, scale, scratch.byteOffset)) * perModel;
  const qk = medianMs(() => w.f32_gemm_4x8_wasmsimd(n, n, QK, q, qkvWidth, scratch.byteOffset, QK * 8, 8, 0, probs.byteOffset, n, 0)) * perModel;
  const sm = medianMs(() => w.f32_softmax_rows_wasmsimd(probs.byteOffset, n, n)) * perModel;
  const pv = medianMs(() => w.f32_gemm_4x8_wasmsimd(n, V, n, probs.byteOffset, n, v, 8, qkvWidth, 0, out.byteOffset, H * V, 0)) * perModel;
  const gf = (mac: number, ms: number) => (2 * mac * perModel) / (ms * 1e6);
  return {
    packK_ms: pack,
    qk_ms: qk,
    qk_gflops: gf(n * n * QK, qk),
    softmax_ms: sm,
    pv_ms: pv,
    pv_gflops: gf(n * n * V, pv),
  };
}

function geluEpilogue(k: WasmKernels) {
  const rand = (len: number) => Float32Array.from({ length: len }, () => Math.random() * 2 - 1);
  const fc1 = k.prepareLinear({ weight: rand(M * D), bias: rand(M), outFeatures: M, inFeatures: D });
  const x = k.upload(rand(T * D));
  const out = k.alloc(T * M);
  const plain = medianMs(() => k.linear(x, T, fc1, out)) * cfg.depth;
  const gelu = medianMs(() => k.linearGelu(x, T, fc1, out)) * cfg.depth;
  const standalone = medianMs(() => k.gelu(out, T * M)) * cfg.depth;
  return { fc1Store_ms: plain, fc1Gelu_ms: gelu, geluEpilogue_ms: gelu - plain, geluStandalone_ms: standalone };
}

const attention = await attentionSplit(kernels, cfg);
const gelu = geluEpilogue(kernels);

if (values.json) {
  process.stdout.write(`${JSON.stringify({ model: values.model, backend: kernels.name, msPerImage: totalMs, kernels: rows, attention, gelu }, null, 2)}\n`);
} else {
  process.stdout.write(`${values.model} on ${kernels.name}, 1 thread: ${totalMs.toFixed(1)} ms/forward (median of ${runs}; per-row medians, so rows need not add up exactly)\n`);
  process.stdout.write(`${'part'.padEnd(52)} ${'ms'.padStart(7)} ${'share'.padStart(6)} ${'calls'.padStart(6)} ${'GFLOP/s'.padStart(8)}\n`);
  for (const row of rows) {
    process.stdout.write(`${row.name.padEnd(52)} ${row.ms.toFixed(2).padStart(7)} ${(100 * row.share).toFixed(1).padStart(5)}% ${String(row.calls).padStart(6)} ${(row.gflops === null ? '' : row.gflops.toFixed(1)).padStart(8)}\n`);
  }
  process.stdout.write(`attention split (whole model, measured alone on n = ${T}): pack scale·Kᵀ ${attention.packK_ms.toFixed(2)} ms, `
    + `Q·Kᵀ ${attention.qk_ms.toFixed(2)} ms (${attention.qk_gflops.toFixed(1)} GFLOP/s), softmax ${attention.softmax_ms.toFixed(2)} ms, `
    + `P·V ${attention.pv_ms.toFixed(2)} ms (${attention.pv_gflops.toFixed(1)} GFLOP/s)\n`);
  process.stdout.write(`fc1 (whole model, alone): store ${gelu.fc1Store_ms.toFixed(2)} ms, with GELU epilogue ${gelu.fc1Gelu_ms.toFixed(2)} ms `
    + `→ GELU costs ${gelu.geluEpilogue_ms.toFixed(2)} ms (standalone gelu kernel over the same data: ${gelu.geluStandalone_ms.toFixed(2)} ms)\n`);
}
